"""Validation of what tenants send, complete before anything is written."""

import copy
import json
import zoneinfo
from functools import lru_cache

import phonenumbers
from django.conf import settings
from rest_framework import serializers

from apps.channels.registry import channel_types, get_backend
from apps.common.serializers import StrictSerializer
from apps.common.validators import validate_locale
from apps.templating.renderer import syntax_error
from apps.templating.store import UnknownTemplate, current_version

from . import extensions
from .models import Delivery, Notification, Priority

MAX_RECIPIENTS = 1000
MAX_CHANNELS = 10


def validate_timezone(value: str) -> str:
    if value not in zoneinfo.available_timezones():
        raise serializers.ValidationError(f"Unknown time zone {value!r}.")
    return value


def validate_e164(value: str) -> str:
    if not value.startswith("+"):
        raise serializers.ValidationError("Phone numbers must be E.164, e.g. +4917612345678.")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise serializers.ValidationError("Not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise serializers.ValidationError("Not a valid phone number.")
    if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != value:
        raise serializers.ValidationError("Phone numbers must be E.164, e.g. +4917612345678.")
    return value


def validate_template_source(value: str) -> str:
    error = syntax_error(value)
    if error:
        raise serializers.ValidationError(f"Template syntax error at {error}")
    return value


class RecipientSerializer(StrictSerializer):
    user_id = serializers.CharField(required=False, max_length=200)
    email = serializers.EmailField(required=False, max_length=254)
    phone = serializers.CharField(required=False, max_length=20, validators=[validate_e164])
    slack_id = serializers.CharField(required=False, max_length=100)
    push_tokens = serializers.ListField(
        child=serializers.CharField(max_length=4096), required=False, max_length=20
    )
    locale = serializers.CharField(required=False, max_length=16, validators=[validate_locale])
    timezone = serializers.CharField(required=False, max_length=64, validators=[validate_timezone])
    metadata = serializers.DictField(required=False)


def validated_config(channel_type: str, config: dict) -> dict:
    """The channel's config, validated by its backend's serializer, or ValidationError.

    A bulk request repeats the same few configs a thousand times, and building the
    config serializer's fields dominated /bulk/ in profiles, so small configs are
    validated once per distinct JSON text. Config validation must therefore depend on
    the config alone (not on settings or the tenant)."""
    text = json.dumps(config, sort_keys=True, default=str)
    if len(text) > CACHED_CONFIG_CHARS:
        valid, result = _validate_config(channel_type, text)
    else:
        valid, result = _cached_validate_config(channel_type, text)
    if not valid:
        raise serializers.ValidationError({"config": copy.deepcopy(result)})
    return copy.deepcopy(result)


CACHED_CONFIG_CHARS = 4096


@lru_cache(maxsize=512)
def _cached_validate_config(channel_type: str, text: str):
    return _validate_config(channel_type, text)


def _validate_config(channel_type: str, text: str) -> tuple[bool, dict]:
    given = json.loads(text)
    config_serializer = get_backend(channel_type).config_serializer(data=given)
    if not config_serializer.is_valid():
        return False, dict(config_serializer.errors)
    config = dict(config_serializer.validated_data)
    unknown = sorted(set(given) - set(config_serializer.fields))
    if unknown:
        return False, {k: ["Unknown field."] for k in unknown}
    if "delay_seconds" in config and "delay_minutes" in config:
        return False, {"delay_minutes": ["Give delay_seconds or delay_minutes, not both."]}
    return True, config


class ChannelSerializer(StrictSerializer):
    type = serializers.ChoiceField(
        choices=[],
        error_messages={"invalid_choice": "Unknown channel type {input!r}."},
    )
    config = serializers.DictField(required=False, default=dict)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = channel_types()

    def validate(self, attrs):
        return {"type": attrs["type"], "config": validated_config(attrs["type"], attrs["config"])}


class NotificationInSerializer(StrictSerializer):
    title = serializers.CharField(
        required=False, allow_blank=True, max_length=1000, validators=[validate_template_source]
    )
    content = serializers.CharField(
        required=False, allow_blank=True, max_length=200_000, validators=[validate_template_source]
    )
    template = serializers.CharField(required=False, max_length=100)
    locale = serializers.CharField(required=False, max_length=16, validators=[validate_locale])
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    # May be empty only for an escalation, whose levels name their own contacts.
    recipients = RecipientSerializer(many=True, allow_empty=True, max_length=MAX_RECIPIENTS)
    channels = ChannelSerializer(many=True, allow_empty=False, max_length=MAX_CHANNELS)
    metadata = serializers.DictField(required=False, default=dict)
    send_at = serializers.DateTimeField(required=False, allow_null=True)
    escalation = serializers.DictField(required=False)

    def validate_template(self, value):
        tenant = self.context.get("tenant")
        try:
            current_version(tenant.pk, value)
        except (UnknownTemplate, AttributeError):
            raise serializers.ValidationError(f"Unknown template {value!r}.") from None
        return value

    def validate_escalation(self, value):
        if extensions.escalations is None:
            raise serializers.ValidationError("Escalation is not available.")
        return extensions.escalations.validate(self.context.get("tenant"), value)

    def validate(self, attrs):
        if not attrs["recipients"] and not attrs.get("escalation"):
            raise serializers.ValidationError({"recipients": ["This list may not be empty."]})
        if not (attrs.get("title") or attrs.get("content") or attrs.get("template")):
            raise serializers.ValidationError(
                {"content": ["Give content (or title), or a template."]}
            )
        types = [channel["type"] for channel in attrs["channels"]]
        duplicates = sorted({t for t in types if types.count(t) > 1})
        if duplicates:
            raise serializers.ValidationError({"channels": [f"Channel {duplicates[0]!r} twice."]})
        if all(channel["config"].get("fallback") for channel in attrs["channels"]):
            raise serializers.ValidationError(
                {"channels": ["At least one channel must not be a fallback."]}
            )
        self._check_addresses(attrs)
        self._pin_template_versions(attrs)
        return attrs

    def _pin_template_versions(self, attrs):
        """Record the version of each template used, so a later edit changes nothing
        already accepted."""
        tenant = self.context.get("tenant")
        if attrs.get("template"):
            attrs["template_version"] = current_version(tenant.pk, attrs["template"])
        for index, channel in enumerate(attrs["channels"]):
            key = channel["config"].get("template")
            if not key:
                continue
            try:
                channel["config"]["template_version"] = current_version(tenant.pk, key)
            except (UnknownTemplate, AttributeError):
                raise serializers.ValidationError(
                    {
                        "channels": {
                            str(index): {"config": {"template": [f"Unknown template {key!r}."]}}
                        }
                    }
                ) from None

    @staticmethod
    def _check_addresses(attrs):
        errors = {}
        for index, recipient in enumerate(attrs["recipients"]):
            for channel in attrs["channels"]:
                if channel["config"].get("fallback"):
                    continue
                backend = get_backend(channel["type"])
                if backend.address_field and not backend.address_for(recipient, channel["config"]):
                    errors[f"{index}"] = {
                        backend.address_field: [f"Required for the {channel['type']} channel."]
                    }
        if errors:
            raise serializers.ValidationError(
                {"recipients": [errors.get(str(i), {}) for i in range(len(attrs["recipients"]))]}
            )


class BulkInSerializer(StrictSerializer):
    notifications = NotificationInSerializer(
        many=True, allow_empty=False, max_length=settings.MAX_BULK_ITEMS
    )


class AcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    deliveries = serializers.IntegerField()


class BulkAcceptedSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.UUIDField())


class DeliveryOutSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    recipient = serializers.CharField(source="recipient_id")
    fallback_for = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = (
            "id",
            "recipient",
            "channel",
            "status",
            "attempts",
            "provider_message_id",
            "sent_at",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "error",
            "fallback_for",
            "cost",
        )

    def get_fallback_for(self, delivery) -> str | None:
        return str(delivery.fallback_for.public_id) if delivery.fallback_for_id else None


class NotificationOutSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    deliveries = DeliveryOutSerializer(many=True)
    escalation = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = (
            "id",
            "status",
            "priority",
            "title",
            "content",
            "locale",
            "metadata",
            "send_at",
            "created_at",
            "escalation",
            "insights",
            "deliveries",
        )

    def get_escalation(self, notification) -> str | None:
        if not notification.has_escalation or extensions.escalations is None:
            return None
        return extensions.escalations.public_id(notification)


class NotificationListSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    channels = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ("id", "status", "priority", "title", "channels", "send_at", "created_at")

    def get_channels(self, notification) -> list[str]:
        return [channel["type"] for channel in notification.channels]
