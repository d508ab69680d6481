""" "Send test message": one message straight through a backend with given credentials,
so a tenant can check an integration before real traffic depends on it."""

import uuid

from .base import ChannelError, OutboundMessage, SendResult
from .registry import get_backend


def send_test(channel: str, credentials: dict, address: str, tenant_name: str):
    backend = get_backend(channel)
    if not address:
        return ChannelError("No address to send the test message to.", permanent=True)
    config = {"channel": address} if channel == "slack" else {}
    message = OutboundMessage(
        delivery_id=f"test-{uuid.uuid4()}",
        notification_id=f"test-{uuid.uuid4()}",
        address=address,
        subject=f"Test message from {tenant_name}",
        body="If you can read this, the integration works.",
        config=config,
        credentials={**backend.default_credentials(), **credentials, "source": "test"},
    )
    [(_message, outcome, _seconds)] = list(backend.send_batch([message]))
    return outcome


def describe(outcome: SendResult | ChannelError) -> dict:
    if isinstance(outcome, ChannelError):
        return {"ok": False, "error": outcome.message, "permanent": outcome.permanent}
    return {"ok": True, "provider_message_id": outcome.provider_message_id or ""}
