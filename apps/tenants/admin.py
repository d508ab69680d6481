from django.contrib import admin, messages
from django.utils import timezone

from .models import ApiKey, Tenant


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # keys are issued by the action, so the clear text can be shown once


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "default_locale", "timezone", "is_active", "created_at")
    list_filter = ("is_active", "default_locale")
    search_fields = ("slug", "name")
    readonly_fields = ("created_at",)
    inlines = (ApiKeyInline,)
    actions = ("issue_api_key",)

    @admin.action(description="Issue a new API key (shown once)")
    def issue_api_key(self, request, queryset):
        for tenant in queryset:
            _key, clear = ApiKey.issue(tenant, f"admin:{request.user}")
            self.message_user(request, f"{tenant.slug}: {clear}", messages.WARNING)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "tenant", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name", "tenant__slug")
    readonly_fields = ("public_id", "prefix", "key_hash", "created_at", "last_used_at")
    actions = ("revoke_keys",)

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).")
