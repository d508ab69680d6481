from django.contrib import admin

from .models import ArchivedAuditEntry, AuditEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "tenant",
        "seq",
        "operation",
        "actor",
        "resource_type",
        "resource_id",
        "result",
    )
    list_filter = ("operation", "result", "tenant")
    search_fields = ("resource_id", "actor", "request_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(AuditEntry, ReadOnlyAdmin)
admin.site.register(ArchivedAuditEntry, ReadOnlyAdmin)
