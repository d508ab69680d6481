"""Retention: move audit entries older than N days to the archive table, chain intact."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.models import ArchivedAuditEntry, AuditEntry

FIELDS = [f.name for f in AuditEntry._meta.concrete_fields if f.name != "id"]


class Command(BaseCommand):
    help = "Move audit entries older than --days to the archive (verification still covers them)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--batch", type=int, default=5000)

    def handle(self, *args, days, batch, **options):
        cutoff = timezone.now() - timedelta(days=days)
        moved = 0
        while True:
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    # The append-only trigger lets this transaction, and only it, delete.
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL audit.archiving = 'on'")
                rows = list(
                    AuditEntry.objects.filter(created_at__lt=cutoff).order_by("tenant_id", "seq")[
                        :batch
                    ]
                )
                if not rows:
                    break
                ArchivedAuditEntry.objects.bulk_create(
                    [ArchivedAuditEntry(**{f: getattr(r, f) for f in FIELDS}) for r in rows]
                )
                AuditEntry.objects.filter(pk__in=[r.pk for r in rows]).delete()
                moved += len(rows)
                self.stdout.write(f"archived {moved} entries so far")
        self.stdout.write(f"archived {moved} audit entries older than {days} days")
