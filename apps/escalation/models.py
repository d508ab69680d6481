import secrets
import uuid

from django.db import models

from apps.notifications.models import Notification
from apps.tenants.models import Tenant


class Condition(models.TextChoices):
    ALWAYS = "always"
    NO_ACKNOWLEDGMENT = "no_acknowledgment"
    NO_RESOLUTION = "no_resolution"


class State(models.TextChoices):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class EscalationPolicy(models.Model):
    """Ordered levels, each `{level, delay_seconds, target_roles, target_users, channels,
    condition}`; `repeat_last` repeats the last level that many more times."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    name = models.SlugField(max_length=100)
    levels = models.JSONField()
    repeat_last = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "escalation policies"
        ordering = ("name",)
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="policy_name")]

    def __str__(self) -> str:
        return self.name


class Escalation(models.Model):
    """The live state of one alert. `snapshot` is the policy as it was when triggered;
    `active_token` is the task id of the one level task allowed to run next."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    notification = models.OneToOneField(
        Notification, on_delete=models.CASCADE, related_name="escalation"
    )
    policy_name = models.CharField(max_length=100, blank=True, default="")
    snapshot = models.JSONField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.TRIGGERED)
    # The index into the expanded level list of the last level that fired (-1: none yet).
    level_reached = models.IntegerField(default=-1)
    next_level = models.IntegerField(null=True, blank=True)
    next_due_at = models.DateTimeField(null=True, blank=True)
    active_token = models.UUIDField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=200, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["next_due_at"], name="escalation_next_due")]

    def __str__(self) -> str:
        return str(self.public_id)


class TimelineEntry(models.Model):
    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=30)  # level_fired, level_skipped, acknowledged, ...
    level = models.IntegerField(null=True, blank=True)
    by = models.CharField(max_length=200, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("at", "id")

    def __str__(self) -> str:
        return f"{self.kind} (level {self.level})"


def new_code() -> str:
    return secrets.token_urlsafe(9)  # 72 bits: short enough for an SMS, not guessable


class ActionLink(models.Model):
    """A one-click acknowledge/resolve link for one contact: `/e/<code>/`."""

    code = models.CharField(max_length=20, unique=True, default=new_code)
    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="links")
    action = models.CharField(max_length=12)  # acknowledge | resolve
    user_id = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["escalation", "action", "user_id"], name="action_link_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.code}"
