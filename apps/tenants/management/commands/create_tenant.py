import zoneinfo

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from apps.tenants.models import Tenant
from apps.tenants.services import create_tenant


class Command(BaseCommand):
    help = "Create a tenant and print its first API key alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--locale", default="en")
        parser.add_argument("--timezone", default="UTC")

    def handle(self, *args, slug, name, locale, timezone, **options):
        if slugify(slug) != slug:
            raise CommandError(f"slug {slug!r} must be lowercase letters, digits and dashes")
        if timezone not in zoneinfo.available_timezones():
            raise CommandError(f"unknown timezone {timezone!r}")
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"tenant {slug!r} exists already")
        tenant, key = create_tenant(slug, name, default_locale=locale, timezone=timezone)
        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name}). API key, shown once:")
        self.stdout.write(key)
