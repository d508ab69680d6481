"""Email over SMTP through Django's SMTP backend, one connection per batch."""

import contextlib
import smtplib
import socket
import time
from email.utils import formataddr
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from rest_framework import serializers

from .base import BaseChannelConfig, ChannelBackend, ChannelError, SendResult


class EmailConfig(BaseChannelConfig):
    from_name = serializers.CharField(required=False, max_length=200)
    from_email = serializers.EmailField(required=False)
    reply_to = serializers.EmailField(required=False)
    track_opens = serializers.BooleanField(required=False, default=False)
    track_clicks = serializers.BooleanField(required=False, default=False)


def smtp_connection() -> SmtpBackend:
    parts = urlsplit(settings.EMAIL_URL)
    return SmtpBackend(
        host=parts.hostname,
        port=parts.port or (465 if parts.scheme == "smtp+ssl" else 25),
        username=unquote(parts.username or "") or None,
        password=unquote(parts.password or "") or None,
        use_tls=parts.scheme == "smtp+tls",
        use_ssl=parts.scheme == "smtp+ssl",
        timeout=settings.EMAIL_TIMEOUT,
        fail_silently=False,
    )


def message_id_for(delivery_id: str) -> str:
    """Stable across retries, so a receiver can recognise a repeat."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
    return f"<{delivery_id}@{domain}>"


def classify_smtp_error(exc: Exception) -> ChannelError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        detail = "; ".join(f"{code} {msg!r}" for code, msg in exc.recipients.values())
        return ChannelError(
            f"recipient refused: {detail}",
            permanent=permanent,
            response_code=codes[0] if codes else None,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        message = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return ChannelError(
            f"SMTP {exc.smtp_code}: {message}",
            permanent=exc.smtp_code >= 500,
            response_code=exc.smtp_code,
        )
    return ChannelError(f"SMTP connection failed: {exc!r}", permanent=False)


def build_email(message, connection) -> EmailMultiAlternatives:
    config = message.config
    from_email = config.get("from_email") or settings.DEFAULT_FROM_EMAIL
    if config.get("from_name"):
        from_email = formataddr((config["from_name"], from_email))
    headers = {
        "Message-ID": message_id_for(message.delivery_id),
        "X-Notify-Delivery-Id": message.delivery_id,
        "X-Notify-Notification-Id": message.notification_id,
    }
    if message.unsubscribe_url:
        # RFC 8058 one-click: the mail client POSTs "List-Unsubscribe=One-Click" to it.
        headers["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email = EmailMultiAlternatives(
        subject=message.subject.replace("\n", " ").strip(),
        body=message.body,
        from_email=from_email,
        to=[message.address],
        reply_to=[config["reply_to"]] if config.get("reply_to") else None,
        headers=headers,
        connection=connection,
    )
    if message.html_body:
        email.attach_alternative(message.html_body, "text/html")
    return email


_CONNECTION_ERRORS = (
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    ConnectionError,
    socket.timeout,
    OSError,
)


class EmailChannel(ChannelBackend):
    type = "email"
    config_serializer = EmailConfig
    address_field = "email"
    wants_html = True

    def send_batch(self, messages):
        connection = smtp_connection()
        broken: ChannelError | None = None
        try:
            for message in messages:
                started = time.monotonic()
                if broken is not None:
                    yield message, broken, 0.0
                    continue
                try:
                    build_email(message, connection).send()
                    outcome = SendResult(
                        provider_message_id=message_id_for(message.delivery_id), response_code=250
                    )
                except smtplib.SMTPResponseException as exc:
                    outcome = classify_smtp_error(exc)
                except smtplib.SMTPRecipientsRefused as exc:
                    outcome = classify_smtp_error(exc)
                except _CONNECTION_ERRORS as exc:
                    # The server is unreachable or hung up: the rest of this batch would
                    # fail the same way, so it is retried later instead of hammered now.
                    outcome = broken = classify_smtp_error(exc)
                    connection.connection = None
                yield message, outcome, time.monotonic() - started
        finally:
            # Closing a connection the server already dropped may raise anything.
            with contextlib.suppress(Exception):
                connection.close()
