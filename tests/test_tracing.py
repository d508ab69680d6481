"""One trace follows a notification from the API request through every pipeline stage
to the provider call (in-memory exporter, real worker)."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rest_framework.test import APIClient

from apps.common import tracing
from apps.notifications.models import Notification
from tests.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def spans():
    exporter = InMemorySpanExporter()
    assert tracing.configure(exporter, SimpleSpanProcessor)
    yield exporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    for instrumentor in (DjangoInstrumentor(), CeleryInstrumentor(), URLLib3Instrumentor()):
        instrumentor.uninstrument()


def test_a_request_is_traced_through_every_stage_to_the_provider(
    spans, celery_worker, tenant_with_key, receiver
):
    client = APIClient()  # a new client loads the middleware the instrumentation added
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant_with_key[1]}")
    body = {
        "content": "traced",
        "recipients": [{"user_id": "t"}],
        "channels": [{"type": "webhook", "config": {"url": receiver.url()}}],
    }
    accepted = client.post("/api/v1/notifications/", body, format="json").json()
    wait_until(
        lambda: Notification.objects.get(public_id=accepted["id"]).status == "completed",
        timeout=30,
    )
    wait_until(lambda: any(s.name == "provider.send" for s in spans.get_finished_spans()))
    finished = spans.get_finished_spans()
    [request] = [s for s in finished if s.kind == trace.SpanKind.SERVER]
    trace_id = request.context.trace_id
    in_trace = {s.name for s in finished if s.context.trace_id == trace_id}
    for stage in ("notifications.preprocess", "notifications.render", "notifications.dispatch"):
        assert any(stage in name for name in in_trace), (stage, sorted(in_trace))
    assert any("notifications.deliver" in name for name in in_trace), sorted(in_trace)
    assert "provider.send" in in_trace and "POST" in in_trace  # the urllib3 call itself
