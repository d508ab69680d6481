"""The escalation app's side of apps.notifications.extensions."""

from django.conf import settings
from rest_framework import serializers

from . import services
from .models import ActionLink, Escalation, EscalationPolicy
from .serializers import InlineEscalationSerializer


def action_urls(escalation: Escalation, user_id: str) -> dict:
    urls = {}
    for action in ("acknowledge", "resolve"):
        link, _ = ActionLink.objects.get_or_create(
            escalation=escalation, action=action, user_id=user_id
        )
        urls[f"{action}_url"] = f"{settings.PUBLIC_BASE_URL}/e/{link.code}/"
        urls[f"{action}_code"] = link.code
    return urls


class EscalationHooks:
    def validate(self, tenant, value: dict) -> dict:
        if set(value) - {"policy", "levels", "repeat_last"} or not (
            bool(value.get("policy")) ^ bool(value.get("levels"))
        ):
            raise serializers.ValidationError('Give {"policy": "<name>"} or {"levels": [...]}.')
        if value.get("policy"):
            if not EscalationPolicy.objects.filter(tenant=tenant, name=value["policy"]).exists():
                raise serializers.ValidationError(f"Unknown escalation policy {value['policy']!r}.")
            return {"policy": value["policy"]}
        inline = InlineEscalationSerializer(data=value)
        inline.is_valid(raise_exception=True)
        return inline.validated_data

    def start(self, notification, value: dict) -> None:
        services.start(notification, value)

    def public_id(self, notification) -> str | None:
        escalation = Escalation.objects.filter(notification=notification).only("public_id").first()
        return str(escalation.public_id) if escalation else None

    def render_extra(self, delivery) -> dict:
        escalation = Escalation.objects.filter(notification_id=delivery.notification_id).first()
        if escalation is None:
            return {}
        return {
            "escalation": {
                "id": str(escalation.public_id),
                "state": escalation.state,
                **action_urls(escalation, delivery.recipient_id),
            }
        }
