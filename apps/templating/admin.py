from django.contrib import admin
from django.utils.html import format_html, format_html_join

from .api import preview
from .models import NotificationTemplate, TemplateVersion

DEFAULT_SAMPLE = {
    "recipient": {"user_id": "sample", "first_name": "Maria", "locale": "de"},
    "notification": {"id": "00000000-0000-0000-0000-000000000000", "priority": "normal"},
}


class VersionInline(admin.TabularInline):
    model = TemplateVersion
    extra = 0
    fields = ("version", "variants", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # versions are published through the API, never edited


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "tenant", "current_version", "updated_at")
    list_filter = ("tenant",)
    search_fields = ("key", "name", "tenant__slug")
    readonly_fields = ("tenant", "key", "current_version", "created_at", "updated_at", "previews")
    fields = ("tenant", "key", "name", "current_version", "sample_context", "previews")
    inlines = (VersionInline,)

    def has_add_permission(self, request):
        return False

    @admin.display(description="Preview of each variant (sample context)")
    def previews(self, template):
        context = template.sample_context or DEFAULT_SAMPLE
        rows = []
        for variant in template.versions.get(version=template.current_version).variants:
            channel = variant.get("channel") or "email"
            try:
                shown = preview(template, template.tenant, channel, variant["locale"], context)
                text = f"{shown['subject']}\n\n{shown['body']}"
            except Exception as exc:  # shown to the editor instead of breaking the page
                text = f"cannot render: {exc}"
            rows.append((variant.get("channel") or "any channel", variant["locale"], text))
        return format_html_join(
            "",
            "<p><b>{} / {}</b></p><pre style='white-space:pre-wrap'>{}</pre>",
            rows,
        ) or format_html("<i>{}</i>", "no variants")
