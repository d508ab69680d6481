"""Sandboxed Jinja2 rendering for tenant-supplied text.

Tenants write the templates, so they are untrusted code: the sandbox blocks attribute
access to Python internals, Jinja's own MAX_RANGE stops `range` bombs, and output size
and render time are capped while the output is generated.
"""

import time
from functools import lru_cache

from jinja2 import TemplateSyntaxError, Undefined
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from .filters import FILTERS, LOCALE_KEY, TIMEZONE_KEY

MAX_OUTPUT_CHARS = 256 * 1024
MAX_RENDER_SECONDS = 2.0


class RenderError(Exception):
    """A template that cannot be rendered; permanent for the delivery that uses it."""


def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(autoescape=autoescape, undefined=Undefined)
    # Keep the globals to what templates need; no `cycler`/`joiner`/`namespace` objects
    # whose internals a template could walk.
    env.globals = {"range": env.globals["range"], "dict": dict}
    env.filters.update(FILTERS)
    return env


_TEXT_ENV = _environment(autoescape=False)
_HTML_ENV = _environment(autoescape=True)


# Bulk requests repeat the same few sources; caching keeps parsing out of the hot path,
# and the length bound keeps the caches small.
CACHED_SOURCE_CHARS = 8192


def syntax_error(source: str) -> str | None:
    """The error of a template that would not compile, with its line, or None."""
    if len(source) <= CACHED_SOURCE_CHARS:
        return _cached_syntax_error(source)
    return _syntax_error(source)


@lru_cache(maxsize=1024)
def _cached_syntax_error(source: str) -> str | None:
    return _syntax_error(source)


def _syntax_error(source: str) -> str | None:
    # Compiling, not just parsing: an unknown filter or test is only found then.
    try:
        _TEXT_ENV.from_string(source)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def _compile(source: str, html: bool):
    if len(source) <= CACHED_SOURCE_CHARS:
        return _cached_compile(source, html)
    return (_HTML_ENV if html else _TEXT_ENV).from_string(source)


@lru_cache(maxsize=1024)
def _cached_compile(source: str, html: bool):
    return (_HTML_ENV if html else _TEXT_ENV).from_string(source)


def render(source: str, context: dict, html: bool = False) -> str:
    if not source:
        return ""
    try:
        template = _compile(source, html)
        started = time.monotonic()
        parts: list[str] = []
        size = 0
        for chunk in template.generate(context):
            parts.append(chunk)
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise RenderError(f"rendered output exceeds {MAX_OUTPUT_CHARS} characters")
            if time.monotonic() - started > MAX_RENDER_SECONDS:
                raise RenderError(f"rendering took longer than {MAX_RENDER_SECONDS}s")
        return "".join(parts)
    except SecurityError as exc:
        raise RenderError(f"template is not allowed: {exc}") from None
    except TemplateError as exc:
        raise RenderError(f"template error: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
        raise RenderError(f"template error: {exc}") from None


def build_context(
    *,
    recipient: dict,
    notification_id: str,
    priority: str,
    metadata: dict,
    tenant_name: str,
    branding: dict | None = None,
    locale: str = "en",
    timezone: str = "UTC",
    extra: dict | None = None,
) -> dict:
    """The template context of the public contract (API.md, Templates)."""
    recipient_metadata = recipient.get("metadata") or {}
    recipient_view = {k: v for k, v in recipient.items() if k != "metadata"}
    recipient_view.update(recipient_metadata)
    context = {**metadata, **recipient_metadata}
    context.update(
        recipient=recipient_view,
        notification={"id": notification_id, "priority": priority, "metadata": metadata},
        tenant={"name": tenant_name, "branding": branding or {}},
        **(extra or {}),
    )
    context[LOCALE_KEY] = locale
    context[TIMEZONE_KEY] = timezone
    return context
