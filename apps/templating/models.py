from django.db import models

from apps.tenants.models import Tenant


class NotificationTemplate(models.Model):
    """A tenant's template, addressed by key. Its content lives in immutable versions:
    editing publishes a new one, and a notification records the version it used."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="templates")
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200, blank=True, default="")
    current_version = models.PositiveIntegerField(default=1)
    # What the admin's preview renders the variants with.
    sample_context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("key",)
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="template_tenant_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} v{self.current_version}"


class TemplateVersion(models.Model):
    """One published version: its variants, each `{channel (or null), locale, subject,
    body, html_body}`. Never changed after it is written."""

    template = models.ForeignKey(
        NotificationTemplate, on_delete=models.CASCADE, related_name="versions"
    )
    version = models.PositiveIntegerField()
    variants = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-version",)
        constraints = [
            models.UniqueConstraint(fields=["template", "version"], name="template_version")
        ]

    def __str__(self) -> str:
        return f"{self.template.key} v{self.version}"
