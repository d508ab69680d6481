"""The single map from a channel type to its backend. Choices and validation derive from
it; a new channel is one module, one line here and its queue in settings (a test checks
that every registered channel has a queue)."""

from .base import ChannelBackend
from .email import EmailChannel
from .push import PushChannel
from .slack import SlackChannel
from .sms import SmsChannel
from .teams import TeamsChannel
from .webhook import WebhookChannel

_BACKENDS: dict[str, ChannelBackend] = {
    backend.type: backend
    for backend in (
        EmailChannel(),
        SmsChannel(),
        SlackChannel(),
        TeamsChannel(),
        PushChannel(),
        WebhookChannel(),
    )
}


def get_backend(channel_type: str) -> ChannelBackend:
    return _BACKENDS[channel_type]


def channel_types() -> list[str]:
    return list(_BACKENDS)


def is_registered(channel_type: str) -> bool:
    return channel_type in _BACKENDS
