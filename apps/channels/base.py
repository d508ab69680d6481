"""The contract every channel backend fulfils: send rendered messages, report each result."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from rest_framework import serializers


class ChannelError(Exception):
    """A failed send. Permanent errors are never retried; transient ones are, with backoff.

    `provider_fault` says whether the provider (not this one message) is at fault: it
    counts towards the provider's circuit breaker. Transient errors are, unless told
    otherwise; permanent ones (a bad number) are not, except e.g. revoked credentials.
    `rate_limited` marks a provider's "slow down" (429), which lowers the send rate.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        response_code: int | None = None,
        provider_fault: bool | None = None,
        rate_limited: bool = False,
        retired_addresses: tuple[str, ...] = (),
    ):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.response_code = response_code
        self.provider_fault = (not permanent) if provider_fault is None else provider_fault
        self.rate_limited = rate_limited
        self.retired_addresses = retired_addresses


@dataclass
class OutboundMessage:
    delivery_id: str
    notification_id: str
    address: str
    subject: str
    body: str
    html_body: str = ""
    config: dict = field(default_factory=dict)
    recipient: dict = field(default_factory=dict)
    priority: str = "normal"
    metadata: dict = field(default_factory=dict)
    credentials: dict = field(default_factory=dict)
    # A one-click unsubscribe URL (RFC 8058) for this recipient and channel, if any.
    unsubscribe_url: str = ""
    # Buttons a channel can show (Slack; push data): {"action", "code", "url"} each.
    actions: list = field(default_factory=list)


@dataclass
class SendResult:
    provider_message_id: str | None = None
    # True when the provider confirms final delivery (a webhook's 2xx); else `sent`.
    delivered: bool = False
    response_code: int | None = None
    # Billing units (SMS segments); the price table is per unit.
    units: int = 1
    # Addresses the provider says are dead (push tokens), never to be used again.
    retired_addresses: tuple[str, ...] = ()


Outcome = tuple[OutboundMessage, SendResult | ChannelError, float]


class BaseChannelConfig(serializers.Serializer):
    delay_seconds = serializers.IntegerField(required=False, min_value=0, max_value=30 * 86400)
    delay_minutes = serializers.IntegerField(required=False, min_value=0, max_value=30 * 1440)
    template = serializers.CharField(required=False, max_length=100)
    fallback = serializers.BooleanField(required=False, default=False)


class ChannelBackend:
    type: str = ""
    config_serializer = BaseChannelConfig
    # The recipient field this channel sends to; None when the address is in the config.
    address_field: str | None = None
    # The credentials a backend needs from the tenant (e.g. a signing secret).
    needs_signing_secret: bool = False
    # Whether the render stage should produce an HTML body for this channel.
    wants_html: bool = False
    # Validates a tenant's own provider credentials (ChannelIntegration); None: none taken.
    credential_serializer = None  # a Serializer class
    # Credential fields shown back only masked.
    secret_fields: tuple[str, ...] = ()
    # Whether the provider reports dead addresses (push tokens) to be filtered out.
    retires_addresses: bool = False

    def default_credentials(self) -> dict:
        """The provider credentials from settings, used unless the tenant has its own."""
        return {}

    def provider_key(self, source: str, address: str) -> str:
        """What one circuit breaker guards: the provider account (`source`), or for
        URL channels the destination host, so one broken receiver never holds back
        a tenant's others."""
        return source

    def fit(self, body: str, config: dict) -> str:
        """Fit a rendered body to the channel (e.g. an SMS's `max_length`); raise a
        permanent ChannelError to refuse it."""
        return body

    def address_for(self, recipient: dict, config: dict) -> str | None:
        if self.address_field is None:
            return None
        return recipient.get(self.address_field) or None

    def send_batch(self, messages: Iterable[OutboundMessage]) -> Iterator[Outcome]:
        """Send each message, yielding `(message, result or error, seconds)` as each
        completes, so the caller can record sends promptly."""
        raise NotImplementedError
