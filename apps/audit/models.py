from django.db import models

from apps.tenants.models import Tenant


class EntryFields(models.Model):
    # Indexed as the first column of the unique (tenant, seq) constraint.
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+", db_index=False)
    seq = models.PositiveBigIntegerField()  # per tenant, from 1, no gaps
    created_at = models.DateTimeField()
    request_id = models.CharField(max_length=64, blank=True, default="")
    actor = models.CharField(max_length=200)
    operation = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=64)
    resource_id = models.CharField(max_length=200, blank=True, default="")
    result = models.CharField(max_length=32, default="ok")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    ip = models.CharField(max_length=64, blank=True, default="")
    user_agent = models.CharField(max_length=300, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.operation} {self.resource_type}:{self.resource_id}"


class AuditEntry(EntryFields):
    """Append-only (a database trigger refuses UPDATE and DELETE) and hash-chained per
    tenant: each entry's hash covers its fields and the previous entry's hash."""

    class Meta:
        verbose_name_plural = "audit entries"
        constraints = [models.UniqueConstraint(fields=["tenant", "seq"], name="audit_tenant_seq")]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="audit_tenant_created"),
            models.Index(fields=["tenant", "operation"], name="audit_tenant_operation"),
        ]


class ArchivedAuditEntry(EntryFields):
    """Entries moved out by retention, chain intact, so verification still covers them."""

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "seq"], name="archived_audit_tenant_seq")
        ]


class AuditChain(models.Model):
    """The head of each tenant's chain; locked while entries are appended."""

    tenant = models.OneToOneField(Tenant, on_delete=models.PROTECT, primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"{self.tenant_id}@{self.seq}"
