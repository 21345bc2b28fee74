from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from . import emails  # noqa: F401 - registers the order e-mail renderer
