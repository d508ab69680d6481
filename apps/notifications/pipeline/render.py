"""Stage 2: render each delivery's subject and body for its recipient and channel."""

from django.template.loader import render_to_string
from django.utils.html import linebreaks

from apps.channels.base import ChannelError
from apps.channels.registry import get_backend
from apps.common.rows import update_rows
from apps.templating.renderer import RenderError, build_context, render

from ..models import Delivery, DeliveryStatus
from ..state import end_with_errors, refresh_statuses
from ..tracking import instrument
from .stage import stage_task


def context_for(delivery: Delivery) -> dict:
    notification = delivery.notification
    tenant = notification.tenant
    return build_context(
        recipient=notification.recipients[delivery.recipient_index],
        notification_id=str(notification.public_id),
        priority=notification.priority,
        metadata=notification.metadata,
        tenant_name=tenant.name,
        branding=tenant.settings.get("branding", {}),
    )


def render_delivery(delivery: Delivery) -> None:
    notification = delivery.notification
    context = context_for(delivery)
    delivery.subject = render(notification.title, context)
    backend = get_backend(delivery.channel)
    config = notification.channels[delivery.channel_index].get("config", {})
    delivery.body = backend.fit(render(notification.content, context), config)
    if backend.wants_html:
        html_content = render(notification.content, context, html=True)
        delivery.html_body = render_to_string(
            "email/notification.html",
            {
                "subject": delivery.subject,
                "body_html": linebreaks(html_content),
                "tenant": context["tenant"],
            },
        )
        if config.get("track_opens") or config.get("track_clicks"):
            delivery.html_body = instrument(
                delivery.html_body,
                str(delivery.public_id),
                opens=bool(config.get("track_opens")),
                clicks=bool(config.get("track_clicks")),
            )


@stage_task("render")
def task(ids: list[int]) -> list[int]:
    deliveries = list(
        Delivery.objects.filter(id__in=ids, status=DeliveryStatus.PENDING).select_related(
            "notification__tenant"
        )
    )
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
