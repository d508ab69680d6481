from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "apps.escalation"
    label = "escalation"

    def ready(self):
        from apps.notifications.extensions import register_escalations

        from .hooks import EscalationHooks

        register_escalations(EscalationHooks())
