"""Log records carry the request id and notification id, and never a secret, a full
phone number or an API key: the filter redacts them before any handler formats."""

import contextvars
import logging
import re

from .middleware import request_id_var

notification_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "notification_id", default="-"
)

_PATTERNS = [
    (re.compile(r"ntf_[0-9a-f]{10}_[A-Za-z0-9_-]+"), "ntf_[redacted]"),
    (re.compile(r"xox[abposr]-[A-Za-z0-9-]+"), "xox-[redacted]"),
    (re.compile(r"whsec_[0-9a-f]+"), "whsec_[redacted]"),
    (re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (
        re.compile(r"(?i)(token|secret|password|auth_token)(['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+"),
        r"\1\2[redacted]",
    ),
    # Phone numbers keep their country code and last two digits.
    (re.compile(r"\+(\d{2})\d{5,11}(\d{2})\b"), r"+\1•••\2"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.notification_id = notification_id_var.get()
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
