"""What a delivery needs from outside the channel backend: the provider credentials
(the tenant's own integration, else the environment's) and which addresses are dead."""

import hashlib

from apps.channels.registry import get_backend
from apps.tenants.models import ChannelIntegration

from ..models import RetiredAddress


def credentials_for(tenant, channel: str) -> dict:
    """The provider credentials and a `source` naming them (the circuit breaker's key):
    `env`, or `integration:<id>` when the tenant brings its own."""
    defaults = get_backend(channel).default_credentials()
    integration = ChannelIntegration.objects.filter(
        tenant=tenant, channel=channel, enabled=True
    ).first()
    if integration is None:
        return {**defaults, "source": f"{channel}:env"}
    # API bases are the deployment's (local fakes, a proxy), so they stay.
    return {**defaults, **integration.credentials(), "source": f"{channel}:{integration.public_id}"}


def address_hash(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()


def retired_hashes(tenant_ids, channel: str) -> set[tuple[int, str]]:
    return set(
        RetiredAddress.objects.filter(tenant_id__in=set(tenant_ids), channel=channel).values_list(
            "tenant_id", "address_hash"
        )
    )


def live_address(delivery, retired: set[tuple[int, str]]) -> str:
    """A push delivery's tokens (one per line) without those reported dead."""
    if not retired:
        return delivery.address
    lines = delivery.address.split("\n")
    return "\n".join(
        line for line in lines if (delivery.tenant_id, address_hash(line)) not in retired
    )


def retire(tenant_id: int, channel: str, addresses, reason: str) -> None:
    RetiredAddress.objects.bulk_create(
        [
            RetiredAddress(
                tenant_id=tenant_id, channel=channel, address_hash=address_hash(a), reason=reason
            )
            for a in set(addresses)
        ],
        ignore_conflicts=True,
    )
