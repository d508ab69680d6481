"""Microsoft Teams incoming webhooks: an Adaptive Card through the hardened HTTP client."""

import json
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers

from apps.common import http

from .base import BaseChannelConfig, ChannelBackend, ChannelError, SendResult
from .concurrent import send_concurrently
from .slack import classify_plain_webhook
from .webhook import validate_webhook_url

# The classic Office 365 connector answers 200 with this text when Teams refused it.
_CONNECTOR_FAILURE = "Webhook message delivery failed"


class TeamsConfig(BaseChannelConfig):
    url = serializers.CharField(max_length=2048, validators=[validate_webhook_url])


def card_for(message) -> dict:
    body = []
    if message.subject:
        body.append(
            {
                "type": "TextBlock",
                "text": message.subject,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            }
        )
    body.append({"type": "TextBlock", "text": message.body or " ", "wrap": True})
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }
        ],
    }


def classify_teams_response(result: http.HttpResult) -> SendResult | ChannelError:
    text = result.body[:300].decode(errors="replace")
    if 200 <= result.status_code < 300 and text.startswith(_CONNECTOR_FAILURE):
        throttled = "429" in text
        return ChannelError(
            f"Teams: {text}",
            response_code=result.status_code,
            rate_limited=throttled,
            permanent=not throttled,
            provider_fault=throttled,
        )
    return classify_plain_webhook(result, "Teams")


class TeamsChannel(ChannelBackend):
    type = "teams"
    config_serializer = TeamsConfig

    def address_for(self, recipient, config):
        return config.get("url")

    def provider_key(self, source: str, address: str) -> str:
        return f"{self.type}:{urlsplit(address).netloc}"

    def send_batch(self, messages):
        return send_concurrently("teams", messages, self.send_one, settings.WEBHOOK_CONCURRENCY)

    def send_one(self, message) -> SendResult | ChannelError:
        body = json.dumps(card_for(message)).encode()
        try:
            result = http.post(message.address, body, {"Content-Type": "application/json"})
        except http.BlockedDestination as exc:
            return ChannelError(str(exc), permanent=True, provider_fault=False)
        except http.HttpError as exc:
            return ChannelError(f"Teams request failed: {exc.__class__.__name__}")
        return classify_teams_response(result)
