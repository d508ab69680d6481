"""Email open and click tracking: signed links, first-time timestamps, no open redirect."""

import re

import pytest

from apps.notifications.models import Delivery
from apps.notifications.pipeline import STAGES
from apps.notifications.tracking import click_url
from tests.conftest import accept_one

pytestmark = pytest.mark.django_db


def rendered_email(tenant, settings, **config):
    settings.PUBLIC_BASE_URL = "http://testserver"
    channels = [{"type": "email", "config": config}]
    notification = accept_one(tenant, channels, [{"user_id": "u", "email": "u@example.com"}])
    notification.content = 'Read <a href="https://shop.example/orders?id=7&amp;x=1">your order</a>'
    notification.save()
    ids = list(Delivery.objects.filter(notification=notification).values_list("id", flat=True))
    for stage in STAGES[:2]:  # preprocess and render
        ids = stage(ids)
    return Delivery.objects.get(notification=notification)


def test_opens_and_clicks_are_recorded_once_and_redirect_to_the_original(client, tenant, settings):
    delivery = rendered_email(tenant, settings, track_opens=True, track_clicks=True)
    [pixel] = re.findall(r'<img src="http://testserver(/t/o/[^"]+)"', delivery.html_body)
    link, *_others = re.findall(r'href="http://testserver(/t/c/[^"]+)"', delivery.html_body)
    assert 'href="https://shop.example' not in delivery.html_body  # the link was rewritten

    response = client.get(pixel)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    delivery.refresh_from_db()
    first_open = delivery.opened_at
    assert first_open is not None and delivery.clicked_at is None

    response = client.get(link.replace("&amp;", "&"))
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/orders?id=7&x=1"
    client.get(pixel)
    delivery.refresh_from_db()
    assert delivery.clicked_at is not None and delivery.opened_at == first_open


def test_untracked_email_has_no_tracking(tenant, settings):
    delivery = rendered_email(tenant, settings)
    assert "/t/o/" not in delivery.html_body and "/t/c/" not in delivery.html_body
    assert 'href="https://shop.example/orders?id=7&amp;x=1"' in delivery.html_body


def test_tampered_or_forged_links_are_404_and_redirect_nowhere(client, tenant, settings):
    delivery = rendered_email(tenant, settings, track_clicks=True)
    genuine = click_url(str(delivery.public_id), "https://shop.example/")
    token = genuine.rsplit("/", 1)[1]
    forged = token[:-3] + ("abc" if not token.endswith("abc") else "xyz")
    assert client.get(f"/t/c/{forged}").status_code == 404
    assert client.get("/t/c/not-a-token").status_code == 404
    assert client.get("/t/o/not-a-token.gif").status_code == 404
    delivery.refresh_from_db()
    assert delivery.clicked_at is None
