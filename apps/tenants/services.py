from django.db import transaction

from .models import ApiKey, Tenant


@transaction.atomic
def create_tenant(slug: str, name: str, **fields) -> tuple[Tenant, str]:
    tenant = Tenant.objects.create(slug=slug, name=name, **fields)
    _key, clear = ApiKey.issue(tenant, "default")
    return tenant, clear
