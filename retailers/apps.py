from django.apps import AppConfig


class RetailersConfig(AppConfig):
    name = "retailers"
