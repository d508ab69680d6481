"""Stage 2: render each delivery's subject and body for its recipient and channel."""

from django.utils.html import linebreaks

from apps.channels.base import ChannelError
from apps.channels.registry import get_backend
from apps.common.rows import update_rows
from apps.templating.layout import branded_html
from apps.templating.renderer import RenderError, build_context, render
from apps.templating.store import UnknownTemplate, choose_variant, locale_chain, variants_of
from apps.templating.text import html_to_text

from .. import digest, extensions
from ..models import Delivery, DeliveryStatus
from ..preferences import unsubscribe_url_for
from ..state import end_with_errors, refresh_statuses
from ..tracking import instrument
from .stage import stage_task


def context_for(delivery: Delivery, locale: str, extra: dict | None = None) -> dict:
    notification = delivery.notification
    tenant = notification.tenant
    recipient = notification.recipients[delivery.recipient_index]
    return build_context(
        extra=extra,
        recipient=recipient,
        notification_id=str(notification.public_id),
        priority=notification.priority,
        metadata=notification.metadata,
        tenant_name=tenant.name,
        branding=tenant.settings.get("branding", {}),
        locale=locale,
        timezone=recipient.get("timezone") or tenant.timezone,
    )


def sources_for(delivery: Delivery, config: dict) -> tuple[dict, str]:
    """The subject/body/html_body sources to render and the locale they are in: the
    channel's own template, else the notification's, else its inline title/content."""
    notification = delivery.notification
    recipient = notification.recipients[delivery.recipient_index]
    locales = locale_chain(
        recipient.get("locale"), notification.locale, notification.tenant.default_locale
    )
    key = config.get("template") or notification.template_key
    if not key:
        inline = {"subject": notification.title, "body": notification.content, "html_body": ""}
        return inline, locales[0]
    version = config.get("template_version") if config.get("template") else None
    version = version or notification.template_version
    try:
        variants = variants_of(notification.tenant_id, key, version)
    except UnknownTemplate:
        raise RenderError(f"template {key!r} version {version} no longer exists") from None
    variant = choose_variant(variants, delivery.channel, locales)
    if variant is None:
        raise RenderError(
            f"template {key!r} has no variant for channel {delivery.channel} "
            f"in {', '.join(locales)}"
        )
    return variant, variant.get("locale") or locales[0]


def render_delivery(delivery: Delivery) -> None:
    notification = delivery.notification
    backend = get_backend(delivery.channel)
    config = notification.channels[delivery.channel_index].get("config", {})
    sources, locale = sources_for(delivery, config)
    items = digest.items_for(delivery) if delivery.digest_key else []
    extra = {"digest": items} if items else {}
    if notification.has_escalation and extensions.escalations is not None:
        extra.update(extensions.escalations.render_extra(delivery))
    context = context_for(delivery, locale, extra)
    if len(items) > 1 and not (config.get("template") or notification.template_key):
        render_inline_digest(delivery, backend, config, context, items)
        return
    delivery.subject = render(sources.get("subject", ""), context)
    text = render(sources.get("body", ""), context)
    links = extra.get("escalation")
    if links and not (config.get("template") or notification.template_key):
        # Inline content gets the one-click links; a template places them itself.
        text += f"\n\nAcknowledge: {links['acknowledge_url']}\nResolve: {links['resolve_url']}"
    if backend.wants_html:
        if sources.get("html_body"):
            body_html = render(sources["html_body"], context, html=True)
        else:
            body_html = linebreaks(render(sources.get("body", ""), context, html=True))
        delivery.html_body = email_html(delivery, body_html, context, config)
        text = text or html_to_text(body_html)
    delivery.body = backend.fit(text, config)


def render_inline_digest(delivery, backend, config, context, items: list[dict]) -> None:
    """Without a template, a digest is each merged notification's content in turn,
    rendered with its own metadata; a template would get the list as `digest`."""
    title = render(delivery.notification.title, context) or "Updates"
    delivery.subject = f"{title} (+{len(items) - 1} more)"
    parts = [render(item["content"], {**context, **item["metadata"]}) for item in items]
    text = "\n\n".join(parts)
    if backend.wants_html:
        escaped = [
            linebreaks(render(item["content"], {**context, **item["metadata"]}, html=True))
            for item in items
        ]
        delivery.html_body = email_html(delivery, "<hr>".join(escaped), context, config)
    delivery.body = backend.fit(text, config)


def email_html(delivery: Delivery, body_html: str, context: dict, config: dict) -> str:
    """The HTML body in the tenant's branded layout, with tracking when asked for."""
    html = branded_html(
        delivery.subject, body_html, context["tenant"], unsubscribe_url_for(delivery)
    )
    if config.get("track_opens") or config.get("track_clicks"):
        html = instrument(
            html,
            str(delivery.public_id),
            opens=bool(config.get("track_opens")),
            clicks=bool(config.get("track_clicks")),
        )
    return html


@stage_task("render")
def task(ids: list[int]) -> list[int]:
    deliveries = Delivery.objects.filter(id__in=ids, status=DeliveryStatus.PENDING).for_sending()
    rendered, errors = [], {}
    for delivery in deliveries:
        try:
            render_delivery(delivery)
            rendered.append(delivery)
        except RenderError as exc:
            errors[delivery.id] = f"render failed: {exc}"
        except ChannelError as exc:
            errors[delivery.id] = exc.message
    update_rows(
        Delivery,
        {d.id: {"subject": d.subject, "body": d.body, "html_body": d.html_body} for d in rendered},
        where={"status": DeliveryStatus.PENDING},
    )
    if errors:
        end_with_errors(errors, [DeliveryStatus.PENDING], DeliveryStatus.FAILED)
        refresh_statuses({d.notification_id for d in deliveries if d.id in errors})
    return [d.id for d in rendered]
