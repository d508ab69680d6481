from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "apps.common"
    label = "common"

    def ready(self):
        from .metrics_export import QueueDepthCollector, add_shared_collector

        add_shared_collector(QueueDepthCollector())

        from .tracing import configure

        configure()
