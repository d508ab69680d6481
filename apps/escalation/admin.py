from django.contrib import admin, messages

from . import services
from .models import Escalation, EscalationPolicy, TimelineEntry


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "repeat_last", "updated_at")
    list_filter = ("tenant",)
    search_fields = ("name", "tenant__slug")


class TimelineInline(admin.TabularInline):
    model = TimelineEntry
    extra = 0
    fields = ("at", "kind", "level", "by", "detail")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    list_display = ("public_id", "tenant", "policy_name", "state", "level_reached", "next_due_at")
    list_filter = ("state", "tenant")
    search_fields = ("public_id", "policy_name")
    readonly_fields = (
        "public_id",
        "tenant",
        "notification",
        "policy_name",
        "snapshot",
        "level_reached",
        "next_level",
        "next_due_at",
        "active_token",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
        "created_at",
    )
    exclude = ("state",)
    inlines = (TimelineInline,)
    actions = ("acknowledge", "resolve")

    def has_add_permission(self, request):
        return False

    @admin.action(description="Acknowledge")
    def acknowledge(self, request, queryset):
        self._move(request, queryset, services.acknowledge)

    @admin.action(description="Resolve")
    def resolve(self, request, queryset):
        self._move(request, queryset, services.resolve)

    def _move(self, request, queryset, move):
        for escalation in queryset:
            try:
                move(escalation, f"admin:{request.user}")
            except services.InvalidTransition as exc:
                self.message_user(request, f"{escalation}: {exc}", messages.WARNING)
