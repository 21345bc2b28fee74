from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = "Lifecycle and visibility"

    def ready(self) -> None:
        from . import emails  # noqa: F401 - registers the digest e-mail renderer
