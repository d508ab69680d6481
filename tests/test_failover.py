"""Failover to fallback channels, Twilio delivery receipts (signed, and forged), and
dead push tokens retired for good: through a real worker and the local fake providers."""

from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from apps.notifications.failover import fail_over
from apps.notifications.models import Delivery, Notification, Preference, RetiredAddress
from notifications_project.devproviders import FakeFcm, FakeTwilio
from tests.conftest import accept_one, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
URL = "/api/v1/notifications/"
PHONE = "+4917612345678"


@pytest.fixture
def twilio(settings):
    fake = FakeTwilio().start()
    settings.TWILIO_ACCOUNT_SID = fake.account_sid
    settings.TWILIO_AUTH_TOKEN = fake.auth_token
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_API_BASE = fake.base_url
    settings.PUBLIC_BASE_URL = "http://testserver"
    yield fake
    fake.stop()


def notify(api, channels, recipients, title="Alert"):
    body = {"title": title, "content": "Payment API down", "recipients": recipients}
    response = api.post(URL, {**body, "channels": channels}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def settled(notification_id):
    def check():
        n = Notification.objects.get(public_id=notification_id)
        return n if n.status in ("completed", "failed", "partially_failed") else None

    return wait_until(check, timeout=30)


def test_sms_failing_permanently_falls_over_to_email(celery_worker, api, twilio, smtp_sink):
    twilio.fail_next(PHONE, (400, 21211, "The 'To' number is not a valid phone number."))
    recipients = [
        {"user_id": "maria", "phone": PHONE, "email": "maria@example.com"},
        {"user_id": "li", "phone": "+4915112345678", "email": "li@example.com"},
    ]
    channels = [{"type": "sms"}, {"type": "email", "config": {"fallback": True}}]
    accepted = notify(api, channels, recipients)
    assert accepted["deliveries"] == 2  # the fallback exists only once needed
    notification = settled(accepted["id"])
    [email] = smtp_sink.wait_for(1)
    assert email["to"] == ["maria@example.com"]  # li's SMS went out: no fallback for li
    sms = Delivery.objects.get(notification=notification, recipient_id="maria", channel="sms")
    fallback = Delivery.objects.get(notification=notification, channel="email")
    assert sms.status == "failed" and "21211" in sms.error
    assert fallback.fallback_for_id == sms.id and fallback.status == "sent"
    assert notification.status == "completed"
    detail = api.get(f"{URL}{accepted['id']}/").json()
    [shown] = [d for d in detail["deliveries"] if d["channel"] == "email"]
    assert shown["fallback_for"] == str(sms.public_id)
    assert shown["cost"] == "0.000100"  # DELIVERY_PRICES' default for email
    assert Delivery.objects.filter(notification=notification, channel="email").count() == 1


def sent_sms(api, twilio):
    notification = settled(notify(api, [{"type": "sms"}], [{"user_id": "u", "phone": PHONE}])["id"])
    delivery = Delivery.objects.get(notification=notification)
    assert delivery.status == "sent" and str(delivery.cost) == "0.007900"  # one segment
    return delivery


def post_callback(url, params, signature):
    path = url.removeprefix("http://testserver")
    return APIClient().post(
        path,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


def test_twilio_status_callback_marks_delivered(celery_worker, api, twilio):
    delivery = sent_sms(api, twilio)
    response = post_callback(*twilio.signed_status(delivery.provider_message_id, "delivered"))
    assert response.status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.delivered_at is not None


def test_forged_twilio_callback_is_refused_and_changes_nothing(celery_worker, api, twilio):
    delivery = sent_sms(api, twilio)
    url, params, signature = twilio.signed_status(delivery.provider_message_id, "delivered")
    tampered = {**params, "MessageStatus": "failed"}
    assert post_callback(url, tampered, signature).status_code == 403
    assert post_callback(url, params, "").status_code == 403
    forged = FakeTwilio(twilio.account_sid, "someone-elses-token")
    forged.messages = twilio.messages
    response = post_callback(*forged.signed_status(delivery.provider_message_id, "delivered"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    delivery.refresh_from_db()
    assert delivery.status == "sent"


def test_undelivered_receipt_fails_the_sms_and_falls_over(celery_worker, api, twilio, smtp_sink):
    channels = [{"type": "sms"}, {"type": "email", "config": {"fallback": True}}]
    recipients = [{"user_id": "u", "phone": PHONE, "email": "u@example.com"}]
    notification = settled(notify(api, channels, recipients)["id"])
    sms = Delivery.objects.get(notification=notification, channel="sms")
    url, params, signature = twilio.signed_status(sms.provider_message_id, "undelivered", "30003")
    assert post_callback(url, params, signature).status_code == 204
    sms.refresh_from_db()
    assert sms.status == "failed" and "undelivered (error 30003)" in sms.error
    smtp_sink.wait_for(1)
    fallback = wait_until(
        lambda: Delivery.objects.filter(fallback_for=sms, status="sent").first(), timeout=20
    )
    assert fallback.channel == "email"


def test_dead_push_token_is_retired_and_never_used_again(celery_worker, api, tmp_path, settings):
    fcm = FakeFcm().start()
    settings.FCM_CREDENTIALS_FILE = str(fcm.service_account_file(tmp_path))
    settings.FCM_API_BASE = fcm.base_url
    try:
        fcm.fail_next("dead-token", "UNREGISTERED")
        recipients = [{"user_id": "u", "push_tokens": ["live-token", "dead-token"]}]
        first = settled(notify(api, [{"type": "push"}], recipients)["id"])
        assert Delivery.objects.get(notification=first).status == "sent"
        assert RetiredAddress.objects.filter(channel="push").count() == 1
        fcm.requests.clear()
        second = settled(notify(api, [{"type": "push"}], recipients, title="Again")["id"])
        assert Delivery.objects.get(notification=second).status == "sent"
        tokens = [r["body"] for r in fcm.received("messages:send")]
        assert len(tokens) == 1 and b"live-token" in tokens[0]
    finally:
        fcm.stop()


@pytest.mark.django_db(transaction=False)
def test_one_fallback_per_recipient_and_channel_even_when_two_channels_fail(tenant):
    channels = [
        {"type": "sms", "config": {}},
        {"type": "slack", "config": {"channel": "#ops"}},
        {"type": "email", "config": {"fallback": True}},
    ]
    recipients = [{"user_id": "u", "phone": PHONE, "email": "u@example.com"}]
    notification = accept_one(tenant, channels, recipients)
    Delivery.objects.filter(notification=notification).update(status="failed")
    sms, slack = Delivery.objects.filter(notification=notification).order_by("id")
    [created] = fail_over([sms.id, slack.id])
    fallback = Delivery.objects.get(id=created)
    assert (fallback.channel, fallback.address, fallback.fallback_for_id) == (
        "email",
        "u@example.com",
        sms.id,
    )
    assert fail_over([sms.id, slack.id]) == []  # idempotent
    assert Delivery.objects.filter(notification=notification).count() == 3


@pytest.mark.django_db(transaction=False)
def test_no_fallback_when_the_recipient_lacks_its_address(tenant):
    channels = [{"type": "sms", "config": {}}, {"type": "email", "config": {"fallback": True}}]
    notification = accept_one(tenant, channels, [{"user_id": "u", "phone": PHONE}])
    Delivery.objects.filter(notification=notification).update(status="failed")
    assert fail_over(Delivery.objects.values_list("id", flat=True)) == []


def test_transient_twilio_error_is_retried_then_sent(celery_worker, api, twilio, fast_retries):
    twilio.fail_next(PHONE, (503, 20500, "Service unavailable"), (429, 20429, "Too many"))
    notification = settled(notify(api, [{"type": "sms"}], [{"user_id": "u", "phone": PHONE}])["id"])
    delivery = Delivery.objects.get(notification=notification)
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert delivery.provider_message_id in twilio.messages
    codes = list(delivery.attempt_log.order_by("number").values_list("outcome", "response_code"))
    assert codes == [("transient_error", 503), ("transient_error", 429), ("success", 201)]


def test_one_click_unsubscribe_end_to_end(celery_worker, api, smtp_sink, settings):
    settings.PUBLIC_BASE_URL = "http://testserver"
    body = {
        "content": "Weekly news",
        "recipients": [{"user_id": "maria", "email": "maria@example.com"}],
        "channels": [{"type": "email"}],
    }
    settled(api.post(URL, body, format="json").json()["id"])
    [item] = smtp_sink.wait_for(1)
    message = item["message"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(message["List-Unsubscribe"]).strip().strip("<>")
    assert link in message.get_body(("html",)).get_content()
    path = link.removeprefix("http://testserver")
    browser = APIClient()
    page = browser.get(path)
    assert page.status_code == 200 and b"Stop receiving email" in page.content
    assert not Preference.objects.exists()  # looking is not unsubscribing
    done = browser.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert done.status_code == 200 and b"You are unsubscribed" in done.content
    assert not Preference.objects.get(user_id="maria").allows("email")
    again = settled(api.post(URL, {**body, "content": "More news"}, format="json").json()["id"])
    delivery = Delivery.objects.get(notification=again)
    assert (delivery.status, delivery.error) == ("suppressed", "recipient turned off email")
    assert len(smtp_sink.messages) == 1
    tampered = path[:-3] + ("xx/" if not path.endswith("xx/") else "yy/")
    assert browser.post(tampered).status_code == 404
