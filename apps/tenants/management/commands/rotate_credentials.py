"""Re-encrypt every tenant's provider credentials with the newest CREDENTIAL_KEYS key."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.tenants.crypto import InvalidToken, rotate
from apps.tenants.models import ChannelIntegration


class Command(BaseCommand):
    help = "Re-encrypt stored provider credentials with the first key of CREDENTIAL_KEYS."

    def handle(self, *args, **options):
        rotated, unreadable = 0, []
        with transaction.atomic():
            for integration in ChannelIntegration.objects.select_for_update():
                try:
                    integration.encrypted_credentials = rotate(integration.encrypted_credentials)
                except InvalidToken:
                    unreadable.append(str(integration))
                    continue
                integration.save(update_fields=["encrypted_credentials"])
                rotated += 1
        self.stdout.write(f"re-encrypted {rotated} integration(s) with the newest key")
        if unreadable:
            raise CommandError(
                "no listed key decrypts: " + ", ".join(unreadable) + " (add the old key back)"
            )
