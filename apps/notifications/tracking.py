"""Open and click tracking for email (`track_opens`, `track_clicks` in the channel config).

An open is a 1x1 image in the HTML body; a click goes through a redirect that records it.
Both URLs carry a token signed with Django's signer, naming the delivery (and, for a
click, the destination), so a link can neither be forged nor turned into an open
redirect. Tokens do not expire: people open mail months later.
"""

import html
import re

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .models import Delivery

_SALT = "notifications.tracking"
_SIGNER = signing.Signer(salt=_SALT)
# A double-quoted absolute http(s) href, as our own layout and most HTML editors write it.
_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)
_PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _token(payload: dict) -> str:
    return _SIGNER.sign_object(payload, compress=True)


def open_url(delivery_id: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/t/o/{_token({'d': delivery_id})}.gif"


def click_url(delivery_id: str, destination: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/t/c/{_token({'d': delivery_id, 'u': destination})}"


def instrument(html_body: str, delivery_id: str, *, opens: bool, clicks: bool) -> str:
    """The HTML with its links sent through the click redirect and an open pixel."""
    if clicks:
        html_body = _HREF.sub(
            lambda m: f'href="{html.escape(click_url(delivery_id, html.unescape(m.group(1))))}"',
            html_body,
        )
    if opens:
        source = open_url(delivery_id)
        pixel = f'<img src="{source}" width="1" height="1" alt="" style="display:none">'
        if "</body>" in html_body:
            html_body = html_body.replace("</body>", pixel + "</body>", 1)
        else:
            html_body += pixel
    return html_body


def _payload(token: str) -> dict:
    try:
        return _SIGNER.unsign_object(token)
    except signing.BadSignature:
        raise Http404("unknown link") from None


def _record(delivery_id: str, field: str) -> None:
    now = timezone.now()
    rows = Delivery.objects.filter(public_id=delivery_id)
    # First time only; a click implies the message was opened.
    rows.filter(**{f"{field}__isnull": True}).update(**{field: now}, updated_at=now)
    if field == "clicked_at":
        rows.filter(opened_at__isnull=True).update(opened_at=now)


@never_cache
@require_GET
def opened(request, token: str):
    _record(_payload(token)["d"], "opened_at")
    return HttpResponse(_PIXEL, content_type="image/gif")


@never_cache
@require_GET
def clicked(request, token: str):
    payload = _payload(token)
    if "u" not in payload:
        raise Http404("unknown link")
    _record(payload["d"], "clicked_at")
    return HttpResponseRedirect(payload["u"])
