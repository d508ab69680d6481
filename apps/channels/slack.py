"""Slack through slack-sdk's WebClient (`chat.postMessage`, Block Kit), or an incoming
webhook URL through the hardened HTTP client."""

import functools
import json
import time
import urllib.error
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from rest_framework import serializers
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from apps.common import http

from .base import BaseChannelConfig, ChannelBackend, ChannelError, SendResult
from .webhook import validate_webhook_url

# Slack's documented `error` values that retrying cannot fix.
PERMANENT_ERRORS = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "msg_too_long",
    "no_text",
    "invalid_blocks",
    "restricted_action",
    "user_not_found",
}
# Errors that mean our credentials are wrong: permanent, and the provider's fault.
AUTH_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
}
THREAD_SECONDS = 7 * 86400


class SlackConfig(BaseChannelConfig):
    channel = serializers.CharField(required=False, max_length=100)
    mention_users = serializers.ListField(
        child=serializers.RegexField(r"^[UW][A-Z0-9]{2,20}$"), required=False, max_length=50
    )
    create_thread = serializers.BooleanField(required=False, default=False)
    webhook_url = serializers.CharField(
        required=False, max_length=2048, validators=[validate_webhook_url]
    )


class SlackCredentials(serializers.Serializer):
    bot_token = serializers.RegexField(r"^xox[bp]-[A-Za-z0-9-]+$", max_length=255)


def web_client(credentials: dict) -> WebClient:
    return _client(credentials["bot_token"], credentials.get("api_base"))


@functools.lru_cache(maxsize=256)
def _client(bot_token: str, api_base: str | None) -> WebClient:
    """One client per token and base, reused by every batch."""
    options = {"timeout": int(settings.PROVIDER_TIMEOUT_SECONDS)}
    if api_base:
        options["base_url"] = f"{api_base.rstrip('/')}/api/"
    return WebClient(token=bot_token, **options)


def blocks_for(message) -> tuple[str, list[dict]]:
    mentions = " ".join(f"<@{user}>" for user in message.config.get("mention_users", []))
    text = f"{mentions} {message.body}".strip() if mentions else message.body
    blocks = []
    if message.subject:
        blocks.append(
            {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}}
        )
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000] or " "}})
    if message.actions:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"escalation_{a['action']}",
                        "text": {"type": "plain_text", "text": a["action"].capitalize()},
                        "value": a["code"],
                        **({"style": "primary"} if a["action"] == "acknowledge" else {}),
                    }
                    for a in message.actions
                ],
            }
        )
    fallback = f"{message.subject}: {text}" if message.subject else text
    return fallback[:4000], blocks


def classify_slack_error(exc: SlackApiError) -> ChannelError:
    response = exc.response
    error = (response.data or {}).get("error", "") if isinstance(response.data, dict) else ""
    status = response.status_code
    message = f"Slack error {error or status}"
    if error == "ratelimited" or status == 429:
        retry_after = float(response.headers.get("Retry-After", 1) or 1)
        return ChannelError(
            message, retry_after=retry_after, response_code=status, rate_limited=True
        )
    if error in AUTH_ERRORS:
        return ChannelError(message, permanent=True, response_code=status, provider_fault=True)
    if error in PERMANENT_ERRORS or (400 <= status < 500 and status != 408):
        return ChannelError(message, permanent=True, response_code=status, provider_fault=False)
    return ChannelError(message, response_code=status)


class SlackChannel(ChannelBackend):
    type = "slack"
    config_serializer = SlackConfig
    address_field = "slack_id"
    credential_serializer = SlackCredentials
    secret_fields = ("bot_token",)

    def default_credentials(self) -> dict:
        return {"bot_token": settings.SLACK_BOT_TOKEN, "api_base": settings.SLACK_API_BASE}

    def address_for(self, recipient, config):
        return config.get("channel") or config.get("webhook_url") or recipient.get("slack_id")

    def provider_key(self, source: str, address: str) -> str:
        if address.startswith(("http://", "https://")):
            return f"slack:{urlsplit(address).netloc}"
        return source

    def send_batch(self, messages):
        # Sequential on purpose: Slack allows about one message per second per channel,
        # and a thread's first message must be posted before its replies.
        for message in messages:
            started = time.monotonic()
            yield message, self.send_one(message), time.monotonic() - started

    def send_one(self, message) -> SendResult | ChannelError:
        if message.config.get("webhook_url"):
            return self._send_incoming_webhook(message)
        credentials = message.credentials
        if not credentials.get("bot_token"):
            return ChannelError("Slack is not configured (no bot token)", permanent=True)
        text, blocks = blocks_for(message)
        thread_key = f"slack-thread:{message.notification_id}:{message.address}"
        options = {}
        if message.config.get("create_thread"):
            thread_ts = cache.get(thread_key)
            if thread_ts:
                options["thread_ts"] = thread_ts
        try:
            response = web_client(credentials).chat_postMessage(
                channel=message.address, text=text, blocks=blocks, **options
            )
        except SlackApiError as exc:
            return classify_slack_error(exc)
        except (SlackClientError, urllib.error.URLError, OSError) as exc:
            return ChannelError(f"Slack request failed: {exc.__class__.__name__}: {exc}")
        ts = response.get("ts", "")
        if message.config.get("create_thread") and "thread_ts" not in options:
            cache.add(thread_key, ts, THREAD_SECONDS)
        return SendResult(
            provider_message_id=f"{response.get('channel', message.address)}:{ts}",
            delivered=True,
            response_code=response.status_code,
        )

    def _send_incoming_webhook(self, message) -> SendResult | ChannelError:
        # A tenant-supplied URL: posted through the hardened client (address filter and
        # pinning), which slack-sdk's WebhookClient cannot do.
        text, blocks = blocks_for(message)
        body = json.dumps({"text": text, "blocks": blocks}).encode()
        try:
            result = http.post(
                message.config["webhook_url"], body, {"Content-Type": "application/json"}
            )
        except http.BlockedDestination as exc:
            return ChannelError(str(exc), permanent=True, provider_fault=False)
        except http.HttpError as exc:
            return ChannelError(f"Slack webhook request failed: {exc.__class__.__name__}")
        return classify_plain_webhook(result, "Slack webhook")


def classify_plain_webhook(result, name: str) -> SendResult | ChannelError:
    """Slack and Teams incoming webhooks answer with a status and a short text."""
    code = result.status_code
    text = result.body[:200].decode(errors="replace")
    if 200 <= code < 300:
        return SendResult(delivered=True, response_code=code)
    message = f"{name} HTTP {code}: {text}"
    if code == 429 or code >= 500 or code == 408:
        retry_after = http.retry_after_seconds(result.headers.get("Retry-After"))
        return ChannelError(
            message, response_code=code, retry_after=retry_after, rate_limited=code == 429
        )
    return ChannelError(message, permanent=True, response_code=code, provider_fault=False)
