"""Signed JSON webhooks through the hardened HTTP client, sent concurrently per batch."""

import hashlib
import hmac
import json
import re
import time
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers

from apps.common import http

from .base import BaseChannelConfig, ChannelBackend, ChannelError, SendResult
from .concurrent import send_concurrently

_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_RESERVED_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "user-agent",
}
USER_AGENT = "notification-service-webhooks/1"


def validate_webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise serializers.ValidationError("Must be an absolute http(s) URL.")
    if parts.username or parts.password:
        raise serializers.ValidationError("Credentials in the URL are not allowed; use headers.")
    return url


def validate_headers(headers: dict) -> dict:
    for name, value in headers.items():
        lowered = name.lower()
        if (
            not _HEADER_NAME.match(name)
            or lowered in _RESERVED_HEADERS
            or lowered.startswith("x-notify-")
        ):
            raise serializers.ValidationError(f"Header {name!r} is not allowed.")
        if not isinstance(value, str) or "\r" in value or "\n" in value or len(value) > 1024:
            raise serializers.ValidationError(f"Header {name!r} must be a one-line string.")
    return headers


class WebhookConfig(BaseChannelConfig):
    url = serializers.CharField(max_length=2048, validators=[validate_webhook_url])
    headers = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, validators=[validate_headers]
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def payload_for(message) -> bytes:
    return json.dumps(
        {
            "id": message.delivery_id,
            "notification_id": message.notification_id,
            "priority": message.priority,
            "title": message.subject,
            "content": message.body,
            "recipient": message.recipient,
            "metadata": message.metadata,
        },
        separators=(",", ":"),
        default=str,
    ).encode()


def classify_response(result: http.HttpResult) -> SendResult | ChannelError:
    code = result.status_code
    if 200 <= code < 300:
        return SendResult(
            provider_message_id=result.headers.get("X-Request-Id"),
            delivered=True,
            response_code=code,
        )
    snippet = result.body[:200].decode(errors="replace")
    if 300 <= code < 400:
        return ChannelError(
            f"HTTP {code}: redirects are not followed", permanent=True, response_code=code
        )
    transient = code >= 500 or code in (408, 425, 429)
    return ChannelError(
        f"HTTP {code}: {snippet}",
        permanent=not transient,
        retry_after=http.retry_after_seconds(result.headers.get("Retry-After")),
        response_code=code,
        rate_limited=code == 429,
    )


def send_one(message) -> SendResult | ChannelError:
    body = payload_for(message)
    timestamp = str(int(time.time()))
    headers = {
        **message.config.get("headers", {}),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Notify-Delivery-Id": message.delivery_id,
        "X-Notify-Timestamp": timestamp,
        "X-Notify-Signature": sign(message.credentials["signing_secret"], timestamp, body),
    }
    try:
        return classify_response(http.post(message.address, body, headers))
    except http.BlockedDestination as exc:
        return ChannelError(str(exc), permanent=True)
    except http.HttpError as exc:
        return ChannelError(f"request failed: {exc.__class__.__name__}: {exc}", permanent=False)


class WebhookChannel(ChannelBackend):
    type = "webhook"
    config_serializer = WebhookConfig
    needs_signing_secret = True

    def address_for(self, recipient, config):
        return config.get("url")

    def provider_key(self, source: str, address: str) -> str:
        return f"{self.type}:{urlsplit(address).netloc}"

    def send_batch(self, messages):
        return send_concurrently("webhook", messages, send_one, settings.WEBHOOK_CONCURRENCY)
