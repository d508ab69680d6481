from rest_framework import serializers

from apps.channels.registry import channel_types
from apps.common.serializers import StrictSerializer
from apps.common.validators import validate_locale
from apps.notifications.serializers import validate_e164, validate_timezone
from apps.tenants.models import Contact

from .models import Condition, Escalation, EscalationPolicy

MAX_LEVELS = 20


class LevelSerializer(StrictSerializer):
    level = serializers.IntegerField(min_value=1, required=False)
    delay_seconds = serializers.IntegerField(min_value=0, max_value=7 * 86400, required=False)
    delay_minutes = serializers.IntegerField(min_value=0, max_value=7 * 1440, required=False)
    target_roles = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list
    )
    target_users = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    channels = serializers.ListField(child=serializers.ChoiceField(choices=[]), allow_empty=False)
    condition = serializers.ChoiceField(choices=Condition.choices, default=Condition.ALWAYS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channels"].child.choices = channel_types()

    def validate(self, attrs):
        if "delay_seconds" in attrs and "delay_minutes" in attrs:
            raise serializers.ValidationError(
                {"delay_minutes": ["Give delay_seconds or delay_minutes, not both."]}
            )
        if not (attrs["target_roles"] or attrs["target_users"]):
            raise serializers.ValidationError(
                {"target_roles": ["Name target_roles or target_users."]}
            )
        return attrs


class LevelsMixin:
    def validate_levels(self, levels):
        numbers = [level.get("level") for level in levels if level.get("level") is not None]
        if numbers and numbers != list(range(1, len(levels) + 1)):
            raise serializers.ValidationError("Levels are numbered 1, 2, 3, ... in order.")
        return [{**level, "level": i + 1} for i, level in enumerate(levels)]


class InlineEscalationSerializer(LevelsMixin, StrictSerializer):
    levels = LevelSerializer(many=True, allow_empty=False, max_length=MAX_LEVELS)
    repeat_last = serializers.IntegerField(min_value=0, max_value=50, required=False, default=0)


class PolicySerializer(LevelsMixin, serializers.ModelSerializer):
    levels = LevelSerializer(many=True, allow_empty=False, max_length=MAX_LEVELS)
    repeat_last = serializers.IntegerField(min_value=0, max_value=50, required=False, default=0)

    class Meta:
        model = EscalationPolicy
        fields = ("name", "levels", "repeat_last", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - {"name", "levels", "repeat_last"})
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)


class ContactSerializer(serializers.ModelSerializer):
    locale = serializers.CharField(
        max_length=16, required=False, allow_blank=True, validators=[validate_locale]
    )

    class Meta:
        model = Contact
        fields = (
            "user_id",
            "name",
            "role",
            "email",
            "phone",
            "slack_id",
            "push_tokens",
            "timezone",
            "locale",
            "metadata",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields) - {"created_at", "updated_at"})
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)

    def validate_phone(self, value):
        return validate_e164(value) if value else value

    def validate_timezone(self, value):
        return validate_timezone(value) if value else value

    def validate_user_id(self, value):
        tenant = self.context["tenant"]
        clash = Contact.objects.filter(tenant=tenant, user_id=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A contact with this user_id exists.")
        return value


class TimelineSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField()
    level = serializers.IntegerField(allow_null=True)
    by = serializers.CharField()
    detail = serializers.JSONField()


class EscalationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    notification = serializers.UUIDField(source="notification.public_id")
    policy = serializers.CharField(source="policy_name")
    level = serializers.SerializerMethodField()
    next_level_at = serializers.DateTimeField(source="next_due_at")
    timeline = TimelineSerializer(many=True)

    class Meta:
        model = Escalation
        fields = (
            "id",
            "notification",
            "policy",
            "state",
            "level",
            "next_level_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "created_at",
            "timeline",
        )

    def get_level(self, escalation) -> int:
        """The level reached (1 = the first level fired; 0 = none yet)."""
        return escalation.level_reached + 1


class ByTextSerializer(StrictSerializer):
    by = serializers.CharField(max_length=200, required=False, default="")
