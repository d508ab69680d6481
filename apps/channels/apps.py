from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "apps.channels"
    label = "notify_channels"

    def ready(self):
        from .metrics import register

        register()
