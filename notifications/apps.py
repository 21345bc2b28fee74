from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "E-mail outbox"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the settings checks)
