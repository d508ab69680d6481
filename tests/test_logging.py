"""Structured logs: JSON lines with the request id and notification id, and no secret,
API key or full phone number, whatever a message contains."""

import io
import json
import logging

import pytest
from pythonjsonlogger.json import JsonFormatter

from apps.common.logging import ContextFilter


@pytest.fixture
def log_lines(settings):
    """A handler built from settings.LOGGING's JSON formatter and context filter."""
    options = settings.LOGGING["formatters"]["json"]
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter(options["format"], rename_fields=options["rename_fields"]))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.django_db
def test_lines_are_json_with_request_and_notification_ids(api, log_lines):
    response = api.post(
        "/api/v1/notifications/",
        {
            "content": "hi",
            "recipients": [{"email": "a@example.com"}],
            "channels": [{"type": "email"}],
        },
        format="json",
        HTTP_X_REQUEST_ID="req-42",
    )
    [line] = [x for x in log_lines() if x["logger"] == "apps.notifications.api"]
    assert line["request_id"] == "req-42"
    assert line["notification_id"] == response.json()["id"]
    assert line["level"] == "INFO" and line["message"] == "accepted with 1 deliveries"


@pytest.mark.django_db
def test_secrets_keys_and_phone_numbers_never_reach_the_log(api, tenant_with_key, log_lines):
    _tenant, key = tenant_with_key
    token = "xoxb-1234-5678-supersecretvalue"
    logging.getLogger("apps.test").warning(
        "calling with %s and key %s for +4917612345678, auth_token=%s, Bearer abc.def",
        token,
        key,
        "tw-secret-99",
    )
    bad = api.post(
        "/api/v1/integrations/",
        {"channel": "slack", "credentials": {"bot_token": token, "oops": 1}},
        format="json",
    )
    assert bad.status_code == 400
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in log_lines())
    for secret in (token, key, "+4917612345678", "tw-secret-99", "abc.def"):
        assert secret not in text
    assert "+49•••78" in text and "xox-[redacted]" in text
