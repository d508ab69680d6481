"""OpenTelemetry tracing, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: one trace follows
a notification from the API request through every Celery stage (the Celery
instrumentation carries the context in task headers) to each provider call."""

import os
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace

tracer = trace.get_tracer("notification-service")
_configured = False


def configure(exporter=None, processor_class=None) -> bool:
    """Install the tracer provider and the Django, Celery and urllib3 instrumentations.
    With no exporter given, spans go to OTEL_EXPORTER_OTLP_ENDPOINT over OTLP/HTTP."""
    global _configured
    if _configured or (exporter is None and not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        return _configured
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    name = os.environ.get("OTEL_SERVICE_NAME", "notification-service")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor((processor_class or BatchSpanProcessor)(exporter))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    CeleryInstrumentor().instrument()
    URLLib3Instrumentor().instrument()
    _configured = True
    return True


def current_context():
    return otel_context.get_current()


@contextmanager
def span_in(parent, name: str, **attributes):
    """A span under `parent` (a context captured in another thread)."""
    token = otel_context.attach(parent)
    try:
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span
    finally:
        otel_context.detach(token)
