from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Servers and tokens"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the settings checks)
