"""Check every tenant's audit hash chain (archive, then live entries); name the first
broken entry and exit non-zero if any chain is broken."""

from django.core.management.base import BaseCommand, CommandError

from apps.audit.trail import verify
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="one tenant's slug (default: all)")

    def handle(self, *args, tenant=None, **options):
        tenants = Tenant.objects.order_by("slug")
        if tenant:
            tenants = tenants.filter(slug=tenant)
        broken = []
        for each in tenants:
            checked, first_bad = verify(each.pk)
            if first_bad is None:
                self.stdout.write(f"{each.slug}: {checked} entries, chain intact")
            else:
                message = (
                    f"{each.slug}: chain broken at entry seq {first_bad.seq} (id {first_bad.pk}, "
                    f"{first_bad.operation} {first_bad.resource_type}:{first_bad.resource_id}) "
                    f"after {checked} good entries"
                )
                self.stdout.write(message)
                broken.append(message)
        if broken:
            raise CommandError("; ".join(broken))
