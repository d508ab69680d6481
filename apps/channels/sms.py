"""SMS through Twilio's own client library, with delivery receipts by status callback."""

import functools
import math
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from rest_framework import serializers
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from .base import BaseChannelConfig, ChannelBackend, ChannelError, SendResult
from .concurrent import send_concurrently

# The GSM 03.38 basic character set; anything else makes the whole message UCS-2.
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table take two septets (an escape, then the character).
_GSM7_EXTENDED = set("^{}\\[~]|€\f")
# Twilio errors that are about this recipient, not about us or Twilio: never retried.
# 21211 invalid To, 21214 unreachable, 21408 region not enabled, 21610 recipient sent
# STOP, 21612 cannot route, 21614 not a mobile number.
PERMANENT_RECIPIENT_CODES = {21211, 21214, 21408, 21610, 21612, 21614}
AUTH_ERROR_CODES = {20003, 20005, 20006}
# Twilio's statuses in callbacks, as this service's delivery statuses.
CALLBACK_STATUSES = {
    "delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
}
SMS_CONCURRENCY = 8


def segments(text: str) -> tuple[str, int]:
    """The encoding ("GSM-7" or "UCS-2") and the number of SMS segments `text` needs:
    160 septets in one GSM-7 segment, 153 each when concatenated; 70 UTF-16 units in
    one UCS-2 segment, 67 each when concatenated."""
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in text):
        septets = sum(2 if c in _GSM7_EXTENDED else 1 for c in text)
        return "GSM-7", 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return "UCS-2", 1 if units <= 70 else math.ceil(units / 67)


def truncate(text: str, max_length: int) -> str:
    """Cut at a word boundary and end with "…", within `max_length` characters."""
    if len(text) <= max_length:
        return text
    cut = text[: max_length - 1]
    boundary = cut.rstrip().rfind(" ")
    if boundary > max_length // 2:
        cut = cut[:boundary]
    return cut.rstrip() + "…"


class SmsConfig(BaseChannelConfig):
    max_length = serializers.IntegerField(required=False, min_value=10, max_value=1600)
    # With truncate false, a body longer than max_length fails instead of being cut.
    truncate = serializers.BooleanField(required=False, default=True)


class SmsCredentials(serializers.Serializer):
    account_sid = serializers.RegexField(r"^AC[0-9a-fA-F]{32}$")
    auth_token = serializers.CharField(max_length=200)
    from_number = serializers.RegexField(r"^\+[1-9]\d{6,14}$")


class LocalBaseHttpClient(TwilioHttpClient):
    """Sends every request to `api_base`'s scheme, host and port, keeping the path:
    Twilio builds URLs from region and edge, so rewriting here is the one place that
    survives both (setting `base_url` does not)."""

    def __init__(self, api_base: str, timeout: float):
        super().__init__(timeout=timeout)
        self.api_base = urlsplit(api_base)

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)._replace(scheme=self.api_base.scheme, netloc=self.api_base.netloc)
        return super().request(method, urlunsplit(parts), *args, **kwargs)


def twilio_client(credentials: dict) -> Client:
    return _client(
        credentials["account_sid"], credentials["auth_token"], credentials.get("api_base")
    )


@functools.lru_cache(maxsize=256)
def _client(account_sid: str, auth_token: str, api_base: str | None) -> Client:
    """One client (and connection pool) per account and base, reused by every batch."""
    timeout = settings.PROVIDER_TIMEOUT_SECONDS
    http_client = (
        LocalBaseHttpClient(api_base, timeout) if api_base else TwilioHttpClient(timeout=timeout)
    )
    return Client(account_sid, auth_token, http_client=http_client)


def status_callback_url(delivery_id: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/api/v1/callbacks/twilio/{delivery_id}/"


def valid_callback_signature(auth_token: str, url: str, params: dict, signature: str) -> bool:
    return bool(signature) and RequestValidator(auth_token).validate(url, params, signature)


def classify_twilio_error(exc: TwilioRestException) -> ChannelError:
    code, status = exc.code, exc.status
    message = f"Twilio {status} error {code}: {exc.msg}"
    if status == 429 or code == 20429:
        return ChannelError(message, response_code=status, rate_limited=True, retry_after=1.0)
    if status >= 500:
        return ChannelError(message, response_code=status)
    if status == 401 or code in AUTH_ERROR_CODES:
        return ChannelError(message, permanent=True, response_code=status, provider_fault=True)
    return ChannelError(message, permanent=True, response_code=status)


class SmsChannel(ChannelBackend):
    type = "sms"
    config_serializer = SmsConfig
    address_field = "phone"
    credential_serializer = SmsCredentials
    secret_fields = ("auth_token",)

    def default_credentials(self) -> dict:
        return {
            "account_sid": settings.TWILIO_ACCOUNT_SID,
            "auth_token": settings.TWILIO_AUTH_TOKEN,
            "from_number": settings.TWILIO_FROM_NUMBER,
            "api_base": settings.TWILIO_API_BASE,
        }

    def fit(self, body: str, config: dict) -> str:
        max_length = config.get("max_length")
        if not max_length or len(body) <= max_length:
            return body
        if not config.get("truncate", True):
            raise ChannelError(
                f"SMS body is {len(body)} characters, over max_length {max_length}",
                permanent=True,
            )
        return truncate(body, max_length)

    def send_batch(self, messages):
        return send_concurrently("sms", messages, self.send_one, SMS_CONCURRENCY)

    def send_one(self, message) -> SendResult | ChannelError:
        credentials = message.credentials
        if not (credentials.get("account_sid") and credentials.get("auth_token")):
            return ChannelError("SMS is not configured (no Twilio account)", permanent=True)
        text = message.body or message.subject
        try:
            sent = twilio_client(credentials).messages.create(
                to=message.address,
                from_=credentials["from_number"],
                body=text,
                status_callback=status_callback_url(message.delivery_id),
            )
        except TwilioRestException as exc:
            return classify_twilio_error(exc)
        except (TwilioException, requests.RequestException) as exc:
            return ChannelError(f"Twilio request failed: {exc.__class__.__name__}: {exc}")
        return SendResult(provider_message_id=sent.sid, response_code=201, units=segments(text)[1])
