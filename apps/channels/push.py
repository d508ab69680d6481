"""Push notifications through firebase-admin (FCM HTTP v1, `send_each`).

A delivery's address is the recipient's push tokens, one per line. Tokens FCM reports
dead (UNREGISTERED, INVALID_ARGUMENT, SENDER_ID_MISMATCH) are handed back as
`retired_addresses`, so the caller can make sure they are never used again.
"""

import hashlib
import json
import threading
import time
import warnings

import firebase_admin
import requests
from django.conf import settings
from firebase_admin import credentials as firebase_credentials
from firebase_admin import exceptions as firebase_errors
from firebase_admin import messaging
from rest_framework import serializers

from .base import BaseChannelConfig, ChannelBackend, ChannelError, SendResult

FCM_BATCH_LIMIT = 500
# Errors that say the token itself is dead: retire it.
_DEAD_TOKEN_ERRORS = (
    messaging.UnregisteredError,
    messaging.SenderIdMismatchError,
    firebase_errors.InvalidArgumentError,
)
# Errors that say our credentials or project are wrong: the provider's fault, permanent.
_AUTH_ERRORS = (
    messaging.ThirdPartyAuthError,
    firebase_errors.UnauthenticatedError,
    firebase_errors.PermissionDeniedError,
)


class PushConfig(BaseChannelConfig):
    deep_link = serializers.CharField(required=False, max_length=2048)
    sound = serializers.CharField(required=False, max_length=100)
    badge_count = serializers.IntegerField(required=False, min_value=0, max_value=99999)
    category = serializers.CharField(required=False, max_length=100)


class PushCredentials(serializers.Serializer):
    service_account = serializers.DictField()

    def validate_service_account(self, value):
        missing = {"project_id", "private_key", "client_email", "token_uri"} - set(value)
        if missing or value.get("type") != "service_account":
            raise serializers.ValidationError(
                "A Firebase service-account JSON with type, project_id, private_key, "
                "client_email and token_uri."
            )
        return value


_apps: dict[str, firebase_admin.App] = {}
_apps_lock = threading.Lock()


def firebase_app(credentials: dict) -> firebase_admin.App:
    """One firebase-admin app per service account and API base, made once per process."""
    account = credentials.get("service_account") or json.loads(
        open(credentials["service_account_file"], encoding="utf-8").read()  # noqa: SIM115
    )
    api_base = credentials.get("api_base")
    name = hashlib.sha256(
        json.dumps([account.get("private_key_id"), account["client_email"], api_base]).encode()
    ).hexdigest()[:24]
    with _apps_lock:
        if name not in _apps:
            app = firebase_admin.initialize_app(
                firebase_credentials.Certificate(account),
                {"httpTimeout": settings.PROVIDER_TIMEOUT_SECONDS},
                name=f"notify-{name}",
            )
            if api_base:
                point_messaging_at(app, api_base)
            _apps[name] = app
        return _apps[name]


def point_messaging_at(app: firebase_admin.App, api_base: str) -> None:
    """firebase-admin has no public switch for the FCM URL: this is the one place that
    sets it (tested in tests/channels). Retries stay with our own retry policy, so the
    client's built-in retries are turned off for that base."""
    service = messaging._get_messaging_service(app)
    project_id = service._project_id
    service._fcm_url = f"{api_base.rstrip('/')}/v1/projects/{project_id}/messages:send"
    service._client.session.mount(api_base, requests.adapters.HTTPAdapter(max_retries=0))


def fcm_message(message, token: str) -> messaging.Message:
    config = message.config
    data = {"notification_id": message.notification_id, "delivery_id": message.delivery_id}
    if config.get("deep_link"):
        data["deep_link"] = config["deep_link"]
    for action in message.actions:  # the app shows these as notification actions
        data[f"{action['action']}_url"] = action["url"]
    urgent = message.priority in ("high", "critical")
    with warnings.catch_warnings():
        # 7.x prefers `fid` (installation ids); apps hand us registration tokens.
        warnings.simplefilter("ignore", DeprecationWarning)
        return messaging.Message(
            token=token,
            notification=messaging.Notification(title=message.subject, body=message.body),
            data=data,
            android=messaging.AndroidConfig(
                priority="high" if urgent else "normal",
                notification=messaging.AndroidNotification(
                    sound=config.get("sound"),
                    click_action=config.get("category"),
                    notification_count=config.get("badge_count"),
                ),
            ),
            apns=messaging.APNSConfig(
                headers={"apns-priority": "10" if urgent else "5"},
                payload=messaging.APNSPayload(
                    aps=messaging.Aps(
                        sound=config.get("sound"),
                        badge=config.get("badge_count"),
                        category=config.get("category"),
                    )
                ),
            ),
        )


def outcome_for(responses: list) -> SendResult | ChannelError:
    """One delivery's outcome from the responses for each of its tokens."""
    dead = tuple(token for token, r in responses if isinstance(r.exception, _DEAD_TOKEN_ERRORS))
    sent = [r.message_id for _, r in responses if r.success]
    if sent:
        return SendResult(provider_message_id=sent[0], retired_addresses=dead, response_code=200)
    errors = [r.exception for _, r in responses if r.exception is not None]
    first = next((e for e in errors if not isinstance(e, _DEAD_TOKEN_ERRORS)), errors[0])
    text = f"FCM {first.code}: {first}"
    if all(isinstance(e, _DEAD_TOKEN_ERRORS) for e in errors):
        return ChannelError(text, permanent=True, provider_fault=False, retired_addresses=dead)
    if isinstance(first, _AUTH_ERRORS):
        return ChannelError(text, permanent=True, provider_fault=True, retired_addresses=dead)
    throttled = isinstance(
        first, messaging.QuotaExceededError | firebase_errors.ResourceExhaustedError
    )
    return ChannelError(text, rate_limited=throttled, retired_addresses=dead)


class PushChannel(ChannelBackend):
    type = "push"
    config_serializer = PushConfig
    address_field = "push_tokens"
    credential_serializer = PushCredentials
    secret_fields = ("service_account",)
    retires_addresses = True

    def default_credentials(self) -> dict:
        return {
            "service_account_file": settings.FCM_CREDENTIALS_FILE,
            "api_base": settings.FCM_API_BASE,
        }

    def address_for(self, recipient, config):
        tokens = recipient.get("push_tokens") or []
        return "\n".join(tokens) or None

    def send_batch(self, messages):
        messages = list(messages)
        by_app: dict[str, list] = {}
        for message in messages:
            credentials = message.credentials
            if not (credentials.get("service_account") or credentials.get("service_account_file")):
                yield message, ChannelError("Push is not configured", permanent=True), 0.0
                continue
            by_app.setdefault(json.dumps(credentials, sort_keys=True), []).append(message)
        for group in by_app.values():
            yield from self._send_group(firebase_app(group[0].credentials), group)

    def _send_group(self, app, messages):
        pairs = [(m, t) for m in messages for t in m.address.split("\n") if t]
        results: dict[str, list] = {m.delivery_id: [] for m in messages}
        started = time.monotonic()
        for start in range(0, len(pairs), FCM_BATCH_LIMIT):
            chunk = pairs[start : start + FCM_BATCH_LIMIT]
            try:
                batch = messaging.send_each([fcm_message(m, t) for m, t in chunk], app=app)
            except (firebase_errors.FirebaseError, requests.RequestException, ValueError) as exc:
                error = ChannelError(f"FCM request failed: {exc.__class__.__name__}: {exc}")
                for message in {id(m): m for m, _ in chunk}.values():
                    results[message.delivery_id] = error
                continue
            for (message, token), response in zip(chunk, batch.responses, strict=True):
                if isinstance(results[message.delivery_id], list):
                    results[message.delivery_id].append((token, response))
        seconds = (time.monotonic() - started) / max(1, len(messages))
        for message in messages:
            result = results[message.delivery_id]
            if isinstance(result, ChannelError):
                yield message, result, seconds
            elif not result:
                yield message, ChannelError("no live push tokens", permanent=True), seconds
            else:
                yield message, outcome_for(result), seconds
