"""Templates by key: versions, locales, filters, the sandbox, the cache; preferences and
quiet hours; scheduled sends held in the database. Stages are driven by hand here."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache
from django.utils import timezone

from apps.notifications.digest import due_leaders
from apps.notifications.models import Delivery, Notification, Preference
from apps.notifications.pipeline import STAGES
from apps.notifications.preferences import quiet_until
from apps.notifications.tasks import release_scheduled
from apps.templating import store

pytestmark = pytest.mark.django_db
TEMPLATES = "/api/v1/templates/"
NOTIFY = "/api/v1/notifications/"

ORDER_SHIPPED = {
    "key": "order-shipped",
    "variants": [
        {
            "locale": "en",
            "subject": "Order {{ order_id }} shipped",
            "body": "{{ items|number_format }} items, {{ total|format_currency('EUR') }}, "
            "on {{ shipped_at|format_datetime('short') }}",
        },
        {
            "locale": "de",
            "subject": "Bestellung {{ order_id }} versandt",
            "body": "{{ items|number_format }} Artikel, {{ total|format_currency('EUR') }}, "
            "am {{ shipped_at|format_datetime('short') }}",
        },
        {"channel": "sms", "locale": "de", "body": "Versandt: {{ order_id }}"},
    ],
}
METADATA = {
    "order_id": "A-17",
    "items": 12840,
    "total": "1234.5",
    "shipped_at": "2026-11-27T08:30:00Z",
}


def render_by_hand(notification_id: str) -> list[Delivery]:
    notification = Notification.objects.get(public_id=notification_id)
    ids = list(notification.deliveries.values_list("id", flat=True))
    for stage in STAGES[:2]:
        ids = stage(ids)
    return list(notification.deliveries.order_by("id"))


def notify(api, recipients, channels=None, **extra):
    body = {
        "template": "order-shipped",
        "recipients": recipients,
        "channels": channels or [{"type": "email"}],
        "metadata": METADATA,
        **extra,
    }
    response = api.post(NOTIFY, body, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"]


@pytest.fixture
def shipped(api):
    cache.clear()
    response = api.post(TEMPLATES, ORDER_SHIPPED, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_rendering_in_de_and_en_with_locale_aware_filters(api, shipped):
    recipients = [
        {"user_id": "de", "email": "de@example.com", "locale": "de", "timezone": "Europe/Berlin"},
        {
            "user_id": "us",
            "email": "us@example.com",
            "locale": "en-US",
            "timezone": "America/New_York",
        },
    ]
    german, american = render_by_hand(notify(api, recipients))
    assert german.subject == "Bestellung A-17 versandt"
    assert german.body == "12.840 Artikel, 1.234,50\xa0€, am 27.11.26, 09:30"
    assert american.subject == "Order A-17 shipped"
    assert american.body.startswith("12,840 items, €1,234.50, on 11/27/26, 3:30")
    assert "Bestellung A-17 versandt" in german.html_body  # in the branded layout


def test_locale_falls_back_recipient_notification_tenant_en(api, tenant, shipped):
    tenant.default_locale = "de"
    tenant.save()
    no_locale = [{"user_id": "a", "email": "a@example.com"}]
    [by_tenant] = render_by_hand(notify(api, no_locale))
    assert by_tenant.subject.startswith("Bestellung")
    [by_notification] = render_by_hand(
        notify(api, no_locale, locale="en", metadata={**METADATA, "n": 1})
    )
    assert by_notification.subject.startswith("Order")
    french = [{"user_id": "f", "email": "f@example.com", "locale": "fr-CA"}]
    [unknown] = render_by_hand(notify(api, french, metadata={**METADATA, "n": 2}))
    assert unknown.subject.startswith("Bestellung")  # fr-CA, fr: none; tenant's de next
    assert store.locale_chain("fr-CA", None, "de") == ["fr-CA", "fr", "de", "en"]


def test_channel_specific_variant_wins_within_a_locale(api, shipped):
    recipients = [
        {"user_id": "d", "email": "d@example.com", "phone": "+4917612345678", "locale": "de"}
    ]
    email, sms = render_by_hand(notify(api, recipients, [{"type": "email"}, {"type": "sms"}]))
    assert sms.body == "Versandt: A-17"
    assert email.body.startswith("12.840 Artikel")


def test_editing_publishes_a_version_and_accepted_notifications_keep_theirs(api, shipped):
    before = notify(api, [{"user_id": "x", "email": "x@example.com"}])
    edited = {"variants": [{"locale": "en", "subject": "v2 {{ order_id }}", "body": "new"}]}
    response = api.put(f"{TEMPLATES}order-shipped/", edited, format="json")
    assert response.status_code == 200 and response.json()["version"] == 2
    after = notify(api, [{"user_id": "y", "email": "y@example.com"}])
    [old] = render_by_hand(before)
    [new] = render_by_hand(after)
    assert old.subject == "Order A-17 shipped" and old.notification.template_version == 1
    assert new.subject == "v2 A-17" and new.notification.template_version == 2
    assert api.get(f"{TEMPLATES}order-shipped/").json()["variants"] == [
        {
            "channel": None,
            "locale": "en",
            "subject": "v2 {{ order_id }}",
            "body": "new",
            "html_body": "",
        }
    ]


@pytest.mark.parametrize(
    ("variant", "path", "message"),
    [
        ({"locale": "en", "body": "ok\n{% if %}"}, "variants.0.body", "line 2"),
        ({"locale": "en", "body": "{{ x|shout }}"}, "variants.0.body", "No filter named 'shout'"),
        ({"locale": "en", "subject": "{{ x", "body": "b"}, "variants.0.subject", "line 1"),
        ({"locale": "english!", "body": "b"}, "variants.0.locale", "locale"),
        ({"locale": "en", "channel": "fax", "body": "b"}, "variants.0.channel", "fax"),
        ({"locale": "en"}, "variants.0.body", "Give a body"),
    ],
)
def test_broken_templates_are_refused_at_save_with_the_line(api, variant, path, message):
    response = api.post(TEMPLATES, {"key": "broken", "variants": [variant]}, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert message in " ".join(details[path]), details
    assert api.get(f"{TEMPLATES}broken/").status_code == 404


def test_duplicate_key_is_a_conflict_and_unknown_template_a_400(api, shipped):
    assert api.post(TEMPLATES, ORDER_SHIPPED, format="json").status_code == 409
    response = api.post(
        NOTIFY,
        {
            "template": "nope",
            "recipients": [{"email": "a@example.com"}],
            "channels": [{"type": "email"}],
        },
        format="json",
    )
    assert response.status_code == 400 and "template" in response.json()["error"]["details"]


def test_sandbox_escapes_are_refused_or_inert_in_previews(api):
    hostile = {
        "key": "hostile",
        "variants": [
            {
                "locale": "en",
                "subject": "{{ ''.__class__.__mro__ }}",
                "body": "{{ cycler.__init__.__globals__ }}{{ recipient.__class__ }}",
            }
        ],
    }
    assert api.post(TEMPLATES, hostile, format="json").status_code == 201
    response = api.post(f"{TEMPLATES}hostile/preview/", {"channel": "email"}, format="json")
    if response.status_code == 200:
        shown = response.json()
        assert "class" not in shown["subject"] + shown["body"]
        assert "globals" not in shown["body"]
    else:
        assert response.status_code == 400
    bomb = {
        "key": "bomb",
        "variants": [{"locale": "en", "body": "{% for i in range(10**9) %}x{% endfor %}"}],
    }
    api.post(TEMPLATES, bomb, format="json")
    response = api.post(f"{TEMPLATES}bomb/preview/", {"channel": "email"}, format="json")
    assert response.status_code == 400 and "range" in str(response.json()["error"]["details"])


def test_preview_returns_what_would_be_sent(api, tenant, shipped):
    tenant.settings = {"branding": {"color": "#ff0000", "logo_url": "https://cdn.example/logo.png"}}
    tenant.save()
    context = {**METADATA, "recipient": {"locale": "de", "timezone": "Europe/Berlin"}}
    response = api.post(
        f"{TEMPLATES}order-shipped/preview/",
        {"context": context, "channel": "email"},
        format="json",
    )
    shown = response.json()
    assert (shown["locale"], shown["version"], shown["subject"]) == (
        "de",
        1,
        "Bestellung A-17 versandt",
    )
    assert "https://cdn.example/logo.png" in shown["html_body"] and "#ff0000" in shown["html_body"]
    sms = api.post(
        f"{TEMPLATES}order-shipped/preview/", {"context": context, "channel": "sms"}, format="json"
    )
    assert sms.json()["body"] == "Versandt: A-17"


def test_the_cache_never_serves_another_tenants_template(api, other_api, shipped):
    other = {
        "key": "order-shipped",
        "variants": [{"locale": "en", "subject": "GLOBEX {{ order_id }}", "body": "b"}],
    }
    assert other_api.post(TEMPLATES, other, format="json").status_code == 201
    [mine] = render_by_hand(
        notify(api, [{"user_id": "m", "email": "m@example.com", "locale": "en"}])
    )
    theirs_id = notify(other_api, [{"user_id": "t", "email": "t@example.com"}])
    [theirs] = render_by_hand(theirs_id)
    assert mine.subject == "Order A-17 shipped" and theirs.subject == "GLOBEX A-17"
    assert other_api.get(f"{TEMPLATES}order-shipped/").json()["version"] == 1


def test_text_alternative_is_made_from_html_when_no_body(api):
    template = {
        "key": "html-only",
        "variants": [
            {
                "locale": "en",
                "subject": "Hi",
                "html_body": "<p>Hello <b>{{ name }}</b></p><p><a href='https://x.example/a'>Open</a></p>",
            }
        ],
    }
    assert api.post(TEMPLATES, template, format="json").status_code == 201
    body = {
        "template": "html-only",
        "recipients": [{"email": "h@example.com"}],
        "channels": [{"type": "email"}],
        "metadata": {"name": "Li"},
    }
    [delivery] = render_by_hand(api.post(NOTIFY, body, format="json").json()["id"])
    assert delivery.body == "Hello Li\n\nOpen (https://x.example/a)"
    assert "<b>Li</b>" in delivery.html_body


def test_opted_out_channel_is_suppressed_with_the_reason(api):
    response = api.put(
        "/api/v1/preferences/maria/", {"channels": {"sms": {"enabled": False}}}, format="json"
    )
    assert response.status_code == 200
    assert api.get("/api/v1/preferences/maria/").json() == {
        "channels": {"sms": {"enabled": False}},
        "quiet_hours": None,
    }
    body = {
        "content": "Hi",
        "recipients": [{"user_id": "maria", "email": "m@example.com", "phone": "+4917612345678"}],
        "channels": [{"type": "email"}, {"type": "sms"}],
    }
    email, sms = render_by_hand(api.post(NOTIFY, body, format="json").json()["id"])
    assert (sms.status, sms.error) == ("suppressed", "recipient turned off sms")
    assert email.status == "pending"


@pytest.mark.parametrize("priority", ["normal", "critical"])
def test_quiet_hours_hold_until_they_end_unless_critical(api, priority):
    now = timezone.now().astimezone(UTC)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=2)).strftime("%H:%M")
    quiet = {"start": start, "end": end, "timezone": "UTC"}
    api.put("/api/v1/preferences/night-owl/", {"quiet_hours": quiet}, format="json")
    body = {
        "content": "Hi",
        "priority": priority,
        "recipients": [{"user_id": "night-owl", "email": "n@example.com"}],
        "channels": [{"type": "email"}],
    }
    notification = Notification.objects.get(
        public_id=api.post(NOTIFY, body, format="json").json()["id"]
    )
    ids = list(notification.deliveries.values_list("id", flat=True))
    for stage in STAGES:
        ids = stage(ids)
    delivery = notification.deliveries.get()
    assert delivery.status == "queued"
    if priority == "critical":
        assert delivery.dispatched_at is not None  # handed to the broker now
    else:
        assert delivery.dispatched_at is None  # held in the database until the window ends
        assert abs((delivery.next_attempt_at - (now + timedelta(hours=2))).total_seconds()) < 60


def test_quiet_window_across_midnight():
    quiet = {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}
    at = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)  # 00:30 in Berlin
    assert quiet_until(quiet, at) == datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    assert quiet_until(quiet, datetime(2026, 11, 27, 12, 0, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"channels": {"fax": {"enabled": False}}}, "channels.fax"),
        ({"channels": {"sms": {"enabled": "perhaps"}}}, "channels.sms.enabled"),
        (
            {"quiet_hours": {"start": "25:00", "end": "07:00", "timezone": "UTC"}},
            "quiet_hours.start",
        ),
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Base"}},
            "quiet_hours.timezone",
        ),
        ({"mute": True}, "mute"),
    ],
)
def test_bad_preferences_are_refused(api, body, path):
    response = api.put("/api/v1/preferences/p/", body, format="json")
    assert response.status_code == 400 and path in response.json()["error"]["details"]
    assert not Preference.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_send_at_is_held_in_the_database_not_the_broker(api):
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    broker.flushdb()
    send_at = (timezone.now() + timedelta(seconds=2)).isoformat()
    body = {
        "content": "Later",
        "recipients": [{"email": "l@example.com"}],
        "channels": [{"type": "email"}],
    }
    accepted = api.post(NOTIFY, {**body, "send_at": send_at}, format="json").json()
    notification = Notification.objects.get(public_id=accepted["id"])
    assert notification.status == "scheduled"
    assert broker.llen("pipeline") == 0  # nothing in the broker that a restart could lose
    assert release_scheduled()["notifications"] == 0  # not due yet
    time.sleep(2.1)
    assert release_scheduled()["notifications"] == 1
    assert broker.llen("pipeline") == 1  # its pipeline chain, handed over when due
    notification.refresh_from_db()
    assert notification.status == "accepted"


def run_pipeline(ids):
    for stage in STAGES:
        ids = stage(ids)
    return ids


def digest_notification(api, what, template=None):
    body = {
        "recipients": [{"user_id": "ops-lead", "email": "lead@example.com"}],
        "channels": [{"type": "email"}],
        "metadata": {"digest_key": "deploys", "what": what},
    }
    body.update(
        {"template": template}
        if template
        else {"title": "Deploys", "content": "Deployed {{ what }}"}
    )
    notification = Notification.objects.get(
        public_id=api.post(NOTIFY, body, format="json").json()["id"]
    )
    return list(notification.deliveries.values_list("id", flat=True))


@pytest.mark.parametrize("with_template", [False, True])
def test_digest_merges_notifications_to_one_recipient_within_the_window(
    api, settings, with_template
):
    settings.DIGEST_WINDOW_SECONDS = 1
    template = None
    if with_template:
        template = "deploy-digest"
        variants = [
            {
                "locale": "en",
                "subject": "{{ digest|length }} deploys",
                "body": "{% for item in digest %}- {{ item.metadata.what }}\n{% endfor %}",
            }
        ]
        assert (
            api.post(TEMPLATES, {"key": template, "variants": variants}, format="json").status_code
            == 201
        )
    [first] = digest_notification(api, "api v1", template)
    assert run_pipeline([first]) == []  # held for the window
    [second] = digest_notification(api, "web v7", template)
    [third] = digest_notification(api, "worker v3", template)
    assert run_pipeline([second, third]) == []
    merged = Delivery.objects.filter(id__in=[second, third])
    assert {(d.status, d.digest_into_id) for d in merged} == {("suppressed", first)}
    assert Delivery.objects.get(id=first).status == "pending"

    assert release_scheduled()["digests"] == 0  # the window is still open
    time.sleep(1.1)
    assert due_leaders(timezone.now()) == [first]
    assert run_pipeline([first]) == [first]
    leader = Delivery.objects.get(id=first)
    assert leader.status == "queued"
    if with_template:
        assert leader.subject == "3 deploys"
        assert leader.body == "- api v1\n- web v7\n- worker v3\n"
    else:
        assert leader.subject == "Deploys (+2 more)"
        assert leader.body == "Deployed api v1\n\nDeployed web v7\n\nDeployed worker v3"
    [later] = digest_notification(api, "cron v2", template)
    assert run_pipeline([later]) == []  # a new window, led by the new one
    assert Delivery.objects.get(id=later).digest_into_id is None
