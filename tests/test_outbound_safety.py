"""The hardened HTTP client's address filter, webhook signing, the template sandbox and
task routing."""

import hashlib
import hmac

import pytest
import urllib3
from django.conf import settings as django_settings

from apps.channels.registry import channel_types
from apps.channels.webhook import classify_response, sign
from apps.common import http
from apps.common.routing import route_task
from apps.templating.renderer import RenderError, build_context, render, syntax_error
from notifications_project.celery import app as celery_app


@pytest.fixture
def only_localhost_allowed(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2/hook",  # another loopback address
        "http://2130706433/hook",  # 127.0.0.1 in decimal
        "http://0x7f000001/hook",  # and in hex
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
        "http://[::1]/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://192.168.1.1/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_addresses_are_refused_unless_listed_exactly(only_localhost_allowed, url):
    with pytest.raises(http.BlockedDestination):
        http.post(url, b"{}", {})


def test_listed_host_is_resolved_and_pinned(only_localhost_allowed):
    assert http.resolve_destination("127.0.0.1", 80) == "127.0.0.1"


def test_remembered_addresses_are_checked_again_on_every_call(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["localhost"]
    assert http.resolve_destination("localhost", 80) in ("127.0.0.1", "::1")
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    with pytest.raises(http.BlockedDestination):
        http.resolve_destination("localhost", 80)


def test_unresolvable_host_is_refused():
    with pytest.raises(http.BlockedDestination):
        http.resolve_destination("no-such-host.invalid", 80)


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(b"secret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("secret", "1700000000", b"{}") == f"v1={expected}"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ recipient.__class__.__init__.__globals__ }}",
    ],
)
def test_sandbox_blocks_python_internals(source):
    try:
        output = render(source, {"recipient": {}})
    except RenderError:
        return
    assert "class" not in output and "globals" not in output and "<" not in output


def test_sandbox_refuses_range_bombs():
    with pytest.raises(RenderError):
        render("{% for i in range(10**9) %}x{% endfor %}", {})


def test_output_size_is_capped():
    with pytest.raises(RenderError):
        render("{% for i in range(90000) %}xxxxxxxxxx{% endfor %}", {})


def test_syntax_error_names_the_line():
    assert syntax_error("line one\n{% if %}").startswith("line 2:")
    assert syntax_error("{{ fine }}") is None


def test_context_merges_recipient_metadata_over_notification_metadata():
    context = build_context(
        recipient={"user_id": "u1", "metadata": {"first_name": "Maria", "tier": "gold"}},
        notification_id="n1",
        priority="high",
        metadata={"tier": "basic", "order": 7},
        tenant_name="Acme",
    )
    text = render(
        "{{ recipient.first_name }} {{ tier }} {{ order }} "
        "{{ notification.priority }} {{ tenant.name }}",
        context,
    )
    assert text == "Maria gold 7 high Acme"


def test_html_rendering_escapes_values():
    assert render("{{ v }}", {"v": "<b>"}, html=True) == "&lt;b&gt;"


def test_every_task_is_routed_to_a_declared_queue():
    celery_app.loader.import_default_modules()
    declared = {queue.name for queue in django_settings.CELERY_TASK_QUEUES}
    unrouted = []
    for name in sorted(celery_app.tasks):
        args = ("email", []) if name == "notifications.deliver" else ()
        route = route_task(name, args, {}, {})
        if not route or route["queue"] not in declared:
            unrouted.append(name)
    assert unrouted == []


def test_every_channel_has_a_delivery_queue():
    declared = {queue.name for queue in django_settings.CELERY_TASK_QUEUES}
    for channel in channel_types():
        assert route_task("notifications.deliver", (channel, []), {}, {})["queue"] in declared


def test_retry_after_is_read_whatever_the_header_case():
    headers = urllib3.HTTPHeaderDict({"retry-after": "30", "x-request-id": "r-1"})
    error = classify_response(http.HttpResult(503, headers, b"busy"))
    assert (error.permanent, error.retry_after) == (False, 30.0)
    ok = classify_response(http.HttpResult(200, headers, b""))
    assert ok.provider_message_id == "r-1" and ok.delivered
