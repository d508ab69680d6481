from django.apps import AppConfig


class TemplatingConfig(AppConfig):
    name = "apps.templating"
    label = "templating"
