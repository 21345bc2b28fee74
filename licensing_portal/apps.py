from django.apps import AppConfig


class LicensingPortalConfig(AppConfig):
    name = "licensing_portal"
    verbose_name = "Cloud Licensing Portal"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the deployment checks)
