from django.contrib import admin
from django.db.models import Count
from django.utils import timezone

from apps.audit import trail as audit

from .models import Delivery, DeliveryAttempt, DeliveryStatus, IdempotencyRecord, Notification
from .pipeline.deliver import enqueue_by_channel
from .services import cancel
from .state import claim, refresh_statuses


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("public_id", "recipient_id", "channel", "status", "attempts", "sent_at", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "tenant",
        "status",
        "priority",
        "title",
        "delivery_count",
        "created_at",
    )
    list_filter = ("status", "priority", "tenant", "created_at")
    search_fields = ("public_id", "title", "tenant__slug")
    date_hierarchy = "created_at"
    readonly_fields = ("public_id", "tenant", "created_at", "updated_at")
    inlines = (DeliveryInline,)
    actions = ("cancel_notifications",)
    list_select_related = ("tenant",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(delivery_total=Count("deliveries"))

    @admin.display(description="deliveries", ordering="delivery_total")
    def delivery_count(self, notification):
        return notification.delivery_total

    @admin.action(description="Cancel what has not been sent yet")
    def cancel_notifications(self, request, queryset):
        stopped = sum(cancel(notification) for notification in queryset)
        self.message_user(request, f"Cancelled {stopped} pending deliveries.")


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "outcome", "response_code", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "tenant",
        "channel",
        "recipient_id",
        "status",
        "attempts",
        "sent_at",
        "short_error",
    )
    list_filter = ("status", "channel", "tenant")
    search_fields = (
        "public_id",
        "recipient_id",
        "address",
        "provider_message_id",
        "notification__public_id",
    )
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = (AttemptInline,)
    actions = ("retry_failed",)
    list_select_related = ("tenant",)

    @admin.display(description="error")
    def short_error(self, delivery):
        return delivery.error[:80]

    @admin.action(description="Retry failed deliveries now")
    def retry_failed(self, request, queryset):
        ids = list(queryset.filter(status=DeliveryStatus.FAILED).values_list("id", flat=True))
        now = timezone.now()
        _token, claimed = claim(
            ids,
            [DeliveryStatus.FAILED],
            status=DeliveryStatus.QUEUED,
            attempts=0,
            error="",
            next_attempt_at=now,
            dispatched_at=now,
        )
        refresh_statuses(
            Delivery.objects.filter(id__in=claimed).values_list("notification_id", flat=True)
        )
        for row in Delivery.objects.filter(id__in=claimed).values("tenant_id", "public_id"):
            audit.record(row["tenant_id"], "admin.delivery_retried", "delivery", row["public_id"])
        enqueue_by_channel(claimed)
        self.message_user(request, f"Queued {len(claimed)} deliveries for another try.")


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(admin.ModelAdmin):
    list_display = ("delivery", "number", "outcome", "response_code", "duration_ms", "started_at")
    list_filter = ("outcome",)
    search_fields = ("delivery__public_id", "error")
    readonly_fields = [f.name for f in DeliveryAttempt._meta.fields]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "tenant", "status_code", "created_at")
    list_filter = ("tenant",)
    search_fields = ("key",)
    readonly_fields = ("tenant", "key", "request_hash", "status_code", "response", "created_at")
