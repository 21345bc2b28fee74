from django.apps import AppConfig


class SmartAccountsConfig(AppConfig):
    name = "smartaccounts"
    verbose_name = "Smart Accounts"

    def ready(self) -> None:
        from . import emails  # noqa: F401 - registers the invitation e-mail renderer
