from django.apps import AppConfig


class ActivationApiConfig(AppConfig):
    name = "activation_api"
    verbose_name = "Activation API"
