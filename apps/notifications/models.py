import uuid

from django.db import models
from django.db.models import Q

from apps.tenants.models import Tenant


class Priority(models.TextChoices):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class NotificationStatus(models.TextChoices):
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    COMPLETED = "completed"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"


TERMINAL_DELIVERY_STATUSES = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.BOUNCED,
    DeliveryStatus.SUPPRESSED,
    DeliveryStatus.CANCELLED,
)
CANCELLABLE_DELIVERY_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.QUEUED)


class Notification(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Indexed through notif_tenant_created, whose first column it is.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    status = models.CharField(
        max_length=20, choices=NotificationStatus.choices, default=NotificationStatus.ACCEPTED
    )
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    title = models.TextField(blank=True, default="")
    content = models.TextField(blank=True, default="")
    template_key = models.CharField(max_length=100, blank=True, default="")
    # Whether an escalation drives it (the escalation app holds the rest).
    has_escalation = models.BooleanField(default=False)
    # The template version current when the notification was accepted.
    template_version = models.PositiveIntegerField(null=True, blank=True)
    locale = models.CharField(max_length=16, blank=True, default="")
    recipients = models.JSONField(default=list)
    channels = models.JSONField(default=list)
    metadata = models.JSONField(default=dict, blank=True)
    insights = models.JSONField(default=dict, blank=True)
    send_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="notif_tenant_created"),
            models.Index(
                fields=["send_at"],
                condition=Q(status="scheduled"),
                name="notif_scheduled_send_at",
            ),
        ]

    def __str__(self) -> str:
        return str(self.public_id)


class DeliveryQuerySet(models.QuerySet):
    def for_sending(self) -> list["Delivery"]:
        """The deliveries, each with the notification and tenant the render and deliver
        stages read, in three queries. Bookkeeping columns are left out: turning each
        timestamp into a datetime costs microseconds in Python, for every delivery
        twice. Related rows are fetched once per batch (a notification to a thousand
        recipients is decoded once, not once per delivery) and attached by hand:
        Django's prefetch_related builds tuple lookups that cost more than the rows."""
        deliveries = list(self.defer(*_BOOKKEEPING))
        notifications = Notification.objects.defer("insights", "send_at", "updated_at").in_bulk(
            {d.notification_id for d in deliveries}
        )
        tenants = Tenant.objects.in_bulk({n.tenant_id for n in notifications.values()})
        for notification in notifications.values():
            Notification.tenant.field.set_cached_value(
                notification, tenants[notification.tenant_id]
            )
        for delivery in deliveries:
            Delivery.notification.field.set_cached_value(
                delivery, notifications[delivery.notification_id]
            )
        return deliveries


_BOOKKEEPING = (
    "dedup_key",
    "provider_message_id",
    "error",
    "cost",
    "claimed_at",
    "next_attempt_at",
    "dispatched_at",
    "sent_at",
    "delivered_at",
    "opened_at",
    "clicked_at",
    "updated_at",
)


class Delivery(models.Model):
    """One recipient on one channel; the unit that is sent, retried and tracked."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Every status change rewrites the row and, as `status` is in the partial indexes'
    # conditions, adds an entry to each index whose condition the new row meets; so the
    # indexes are few and partial, and the two foreign keys below are covered by the
    # leading columns of delivery_dedup and the unique constraint instead of their own.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    recipient_index = models.PositiveIntegerField()
    recipient_id = models.CharField(max_length=200, blank=True, default="")
    channel = models.CharField(max_length=20)
    channel_index = models.PositiveSmallIntegerField(default=0)
    address = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    dedup_key = models.CharField(max_length=64, blank=True, default="")
    subject = models.TextField(blank=True, default="")
    body = models.TextField(blank=True, default="")
    html_body = models.TextField(blank=True, default="")
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    error = models.TextField(blank=True, default="")
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the delivery was last handed to the broker; NULL while the database holds it
    # back (a long delay or backoff), for the releaser to hand over when it is due.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    fallback_for = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fallbacks",
        db_index=False,
    )
    # Notifications with the same metadata.digest_key to one recipient and channel are
    # merged: the first is held for the window, later ones point at it (digest_into).
    digest_key = models.CharField(max_length=64, blank=True, default="")
    digest_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="digest_members",
        db_index=False,
    )
    # Price of the send (per unit, e.g. SMS segments) from DELIVERY_PRICES.
    cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            # One delivery per recipient and channel; also what makes failover idempotent.
            models.UniqueConstraint(
                fields=["notification", "recipient_index", "channel_index"],
                name="delivery_one_per_recipient_channel",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "dedup_key", "created_at"], name="delivery_dedup"),
            # What the sweeper and the releasers look for, each only the rows in that state.
            models.Index(
                fields=["claimed_at"], condition=Q(status="sending"), name="delivery_sending_since"
            ),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="queued", dispatched_at__isnull=True),
                name="delivery_held_due",
            ),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="queued", dispatched_at__isnull=False),
                name="delivery_dispatched_due",
            ),
            models.Index(
                fields=["created_at"], condition=Q(status="pending"), name="delivery_pending_since"
            ),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending") & ~Q(digest_key=""),
                name="delivery_digest_due",
            ),
            models.Index(
                fields=["tenant", "recipient_id", "channel", "digest_key"],
                condition=~Q(digest_key=""),
                name="delivery_digest",
            ),
            models.Index(
                fields=["fallback_for"],
                condition=Q(fallback_for__isnull=False),
                name="delivery_fallback_for",
            ),
            models.Index(
                fields=["digest_into"],
                condition=Q(digest_into__isnull=False),
                name="delivery_digest_into",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.public_id}"


class AttemptOutcome(models.TextChoices):
    SUCCESS = "success"
    TRANSIENT_ERROR = "transient_error"
    PERMANENT_ERROR = "permanent_error"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    response_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ("delivery", "number")

    def __str__(self) -> str:
        return f"{self.delivery_id}#{self.number} {self.outcome}"


class IdempotencyRecord(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_tenant_key")
        ]

    def __str__(self) -> str:
        return self.key


class RetiredAddress(models.Model):
    """An address a provider reported dead (an unregistered push token): never used again
    for this tenant. Stored hashed: tokens are long, and only equality matters."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=20)
    address_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel", "address_hash"], name="retired_address_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address_hash[:12]}"


class Preference(models.Model):
    """A recipient's choices, per tenant: channels on or off, and quiet hours."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user_id = models.CharField(max_length=200)
    # {"email": {"enabled": true}, "sms": {"enabled": false}}; a channel not named is on.
    channels = models.JSONField(default=dict, blank=True)
    # {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"} or null.
    quiet_hours = models.JSONField(null=True, blank=True)
    # Why a channel was last turned off (e.g. "one-click unsubscribe"), per channel.
    reasons = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user_id"], name="preference_tenant_user")
        ]

    def __str__(self) -> str:
        return self.user_id

    def allows(self, channel: str) -> bool:
        return bool((self.channels.get(channel) or {}).get("enabled", True))
