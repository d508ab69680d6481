"""The local stand-ins behave like real servers where the tests depend on it."""

import pytest

from apps.common import http
from notifications_project.devsinks import WebhookReceiver


def test_a_stopped_receiver_answers_nothing_more(settings):
    """Its keep-alive connections close with it: otherwise a pooled client connection
    would still be answered by it, even after another receiver took over its port."""
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    receiver = WebhookReceiver().start()
    headers = {"Content-Type": "application/json"}
    assert http.post(receiver.url(), b"{}", headers).status_code == 200
    receiver.stop()
    with pytest.raises(http.HttpError):
        http.post(receiver.url(), b"{}", headers)
    assert len(receiver.requests) == 1
