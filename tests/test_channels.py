"""Each channel through its provider's own client library (twilio, slack-sdk,
firebase-admin, the hardened HTTP client for Teams) against a local server that answers
as the provider does, errors included. No worker: the backends are called directly."""

import base64
import json
from urllib.parse import parse_qsl

import pytest
from firebase_admin import messaging

from apps.channels.base import ChannelError, OutboundMessage, SendResult
from apps.channels.push import PushChannel, point_messaging_at
from apps.channels.slack import SlackChannel
from apps.channels.sms import SmsChannel, segments, truncate
from apps.channels.teams import TeamsChannel
from notifications_project.devproviders import FakeFcm, FakeSlack, FakeTeams, FakeTwilio

pytestmark = pytest.mark.django_db


def message(address, credentials=None, config=None, **extra) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=extra.pop("delivery_id", "d-1"),
        notification_id=extra.pop("notification_id", "n-1"),
        address=address,
        subject=extra.pop("subject", "Disk almost full"),
        body=extra.pop("body", "Volume /data is at 93%"),
        config=config or {},
        credentials=credentials or {},
        **extra,
    )


def send(backend, *messages):
    return {m.delivery_id: outcome for m, outcome, _ in backend.send_batch(list(messages))}


@pytest.fixture
def twilio():
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


def twilio_credentials(fake):
    return {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "from_number": "+15005550006",
        "api_base": fake.base_url,
    }


def test_sms_is_sent_through_twilio_with_a_status_callback(twilio, settings):
    settings.PUBLIC_BASE_URL = "https://notify.example.com"
    outcome = send(SmsChannel(), message("+4917612345678", twilio_credentials(twilio)))["d-1"]
    assert isinstance(outcome, SendResult) and outcome.provider_message_id.startswith("SM")
    [request] = twilio.received("/Messages.json")
    form = dict(parse_qsl(request["body"].decode()))
    assert form["To"] == "+4917612345678" and form["From"] == "+15005550006"
    assert form["Body"] == "Volume /data is at 93%"
    assert form["StatusCallback"] == "https://notify.example.com/api/v1/callbacks/twilio/d-1/"
    expected = base64.b64encode(f"{twilio.account_sid}:{twilio.auth_token}".encode()).decode()
    assert request["headers"]["Authorization"] == f"Basic {expected}"


@pytest.mark.parametrize(
    ("answer", "permanent", "provider_fault"),
    [
        ((400, 21211, "The 'To' number is not a valid phone number."), True, False),
        ((400, 21610, "Attempt to send to unsubscribed recipient"), True, False),
        ((429, 20429, "Too Many Requests"), False, True),
        ((503, 20500, "Service unavailable"), False, True),
    ],
)
def test_twilio_errors_are_classified(twilio, answer, permanent, provider_fault):
    twilio.fail_next("+4917612345678", answer)
    outcome = send(SmsChannel(), message("+4917612345678", twilio_credentials(twilio)))["d-1"]
    assert isinstance(outcome, ChannelError)
    assert (outcome.permanent, outcome.provider_fault) == (permanent, provider_fault)
    assert str(answer[1]) in outcome.message


def test_wrong_twilio_credentials_are_permanent_and_the_providers_fault(twilio):
    credentials = {**twilio_credentials(twilio), "auth_token": "wrong"}
    outcome = send(SmsChannel(), message("+4917612345678", credentials))["d-1"]
    assert outcome.permanent and outcome.provider_fault and outcome.response_code == 401


def test_a_long_sms_is_billed_per_segment(twilio):
    long = message("+4917612345678", twilio_credentials(twilio), body="x" * 200)
    assert send(SmsChannel(), long)["d-1"].units == 2


def test_sms_segments_count_gsm7_and_ucs2():
    assert segments("a" * 160) == ("GSM-7", 1)
    assert segments("a" * 161) == ("GSM-7", 2)
    assert segments("€" * 80) == ("GSM-7", 1)  # two septets each
    assert segments("€" * 81) == ("GSM-7", 2)
    assert segments("ä" * 160) == ("GSM-7", 1)  # in the basic table
    assert segments("ł" * 70) == ("UCS-2", 1)
    assert segments("ł" * 71) == ("UCS-2", 2)
    assert segments("😀" * 35) == ("UCS-2", 1)  # two UTF-16 units each


def test_sms_max_length_truncates_at_a_word_or_refuses():
    backend = SmsChannel()
    text = "Your parcel is out for delivery and arrives between ten and twelve"
    cut = backend.fit(text, {"max_length": 30})
    assert len(cut) <= 30 and cut.endswith("…") and cut == "Your parcel is out for…"
    assert truncate("short", 30) == "short"
    with pytest.raises(ChannelError) as refused:
        backend.fit(text, {"max_length": 30, "truncate": False})
    assert refused.value.permanent and "max_length 30" in refused.value.message


@pytest.fixture
def slack():
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def slack_credentials(fake):
    return {"bot_token": fake.token, "api_base": fake.base_url}


def test_slack_posts_block_kit_with_mentions(slack):
    config = {"channel": "#ops", "mention_users": ["U123ABC"]}
    outcome = send(SlackChannel(), message("#ops", slack_credentials(slack), config))["d-1"]
    assert isinstance(outcome, SendResult) and outcome.delivered
    [request] = slack.received("chat.postMessage")
    payload = json.loads(request["body"])
    assert request["headers"]["Authorization"] == f"Bearer {slack.token}"
    assert payload["channel"] == "#ops"
    assert payload["blocks"][0]["text"]["text"] == "Disk almost full"
    assert payload["blocks"][1]["text"]["text"] == "<@U123ABC> Volume /data is at 93%"
    assert outcome.provider_message_id.startswith("#ops:")


def test_slack_thread_keeps_follow_ups_of_a_notification_together(slack):
    config = {"channel": "#ops", "create_thread": True}
    credentials = slack_credentials(slack)
    first = message("#ops", credentials, config, delivery_id="a", notification_id="n-thread")
    second = message("#ops", credentials, config, delivery_id="b", notification_id="n-thread")
    outcomes = send(SlackChannel(), first, second)
    payloads = [json.loads(r["body"]) for r in slack.received("chat.postMessage")]
    assert "thread_ts" not in payloads[0]
    assert payloads[1]["thread_ts"] == outcomes["a"].provider_message_id.split(":", 1)[1]


@pytest.mark.parametrize(
    ("error", "permanent", "provider_fault"),
    [
        ("channel_not_found", True, False),
        ("invalid_auth", True, True),
        ("ratelimited", False, True),
        ("internal_error", False, True),
    ],
)
def test_slack_errors_are_classified(slack, error, permanent, provider_fault):
    slack.fail_next("#ops", error)
    outcome = send(SlackChannel(), message("#ops", slack_credentials(slack)))["d-1"]
    assert isinstance(outcome, ChannelError) and error in outcome.message
    assert (outcome.permanent, outcome.provider_fault) == (permanent, provider_fault)
    if error == "ratelimited":
        assert outcome.retry_after == 1.0 and outcome.rate_limited


def test_slack_incoming_webhook_url(slack):
    config = {"webhook_url": f"{slack.base_url}/hooks/T1/B1/x"}
    outcome = send(SlackChannel(), message(config["webhook_url"], {}, config))["d-1"]
    assert isinstance(outcome, SendResult)
    slack.fail_next("/hooks/T1/B1/x", (404, "no_service"))
    outcome = send(SlackChannel(), message(config["webhook_url"], {}, config))["d-1"]
    assert outcome.permanent and "no_service" in outcome.message


@pytest.fixture
def teams():
    fake = FakeTeams().start()
    yield fake
    fake.stop()


def test_teams_gets_an_adaptive_card(teams):
    url = f"{teams.base_url}/webhookb2/abc"
    outcome = send(TeamsChannel(), message(url, config={"url": url}))["d-1"]
    assert isinstance(outcome, SendResult) and outcome.delivered
    card = json.loads(teams.received("/webhookb2/abc")[0]["body"])
    content = card["attachments"][0]["content"]
    assert card["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert [block["text"] for block in content["body"]] == [
        "Disk almost full",
        "Volume /data is at 93%",
    ]


@pytest.mark.parametrize(
    ("answer", "permanent"),
    [
        ((429, "Microsoft Teams endpoint returned HTTP error 429"), False),
        ((200, "Webhook message delivery failed with error: HTTP error 429"), False),
        ((400, "Bad payload received by generic incoming webhook."), True),
        ((410, "Gone"), True),
        ((502, "Bad gateway"), False),
    ],
)
def test_teams_errors_are_classified(teams, answer, permanent):
    url = f"{teams.base_url}/webhookb2/abc"
    teams.fail_next("/webhookb2/abc", answer)
    outcome = send(TeamsChannel(), message(url, config={"url": url}))["d-1"]
    assert isinstance(outcome, ChannelError) and outcome.permanent is permanent


@pytest.fixture
def fcm(tmp_path):
    fake = FakeFcm().start()
    fake.credentials = {
        "service_account_file": str(fake.service_account_file(tmp_path)),
        "api_base": fake.base_url,
    }
    yield fake
    fake.stop()


def test_push_batch_with_one_dead_token(fcm):
    fcm.fail_next("dead-token", "UNREGISTERED")
    config = {"deep_link": "app://alerts/7", "sound": "alert.caf", "badge_count": 3}
    both = message("live-token\ndead-token", fcm.credentials, config, priority="critical")
    only_dead = message("dead-token", fcm.credentials, config, delivery_id="d-2")
    fcm.fail_next("dead-token", "UNREGISTERED")
    outcomes = send(PushChannel(), both, only_dead)
    assert isinstance(outcomes["d-1"], SendResult)
    assert outcomes["d-1"].retired_addresses == ("dead-token",)
    assert outcomes["d-2"].permanent and outcomes["d-2"].retired_addresses == ("dead-token",)
    [sent] = [json.loads(r["body"])["message"] for r in fcm.received("messages:send")]
    assert sent["token"] == "live-token"
    assert sent["data"] == {
        "notification_id": "n-1",
        "delivery_id": "d-1",
        "deep_link": "app://alerts/7",
    }
    assert sent["apns"]["payload"]["aps"] == {"sound": "alert.caf", "badge": 3}
    assert sent["android"]["priority"] == "high"
    assert sent["notification"] == {"title": "Disk almost full", "body": "Volume /data is at 93%"}


@pytest.mark.parametrize(
    ("error", "permanent", "rate_limited"),
    [
        ("UNAVAILABLE", False, False),
        ("QUOTA_EXCEEDED", False, True),
        ("INVALID_ARGUMENT", True, False),
    ],
)
def test_push_errors_are_classified(fcm, error, permanent, rate_limited):
    fcm.fail_next("tok", error)
    outcome = send(PushChannel(), message("tok", fcm.credentials))["d-1"]
    assert isinstance(outcome, ChannelError)
    assert (outcome.permanent, outcome.rate_limited) == (permanent, rate_limited)


def test_fcm_url_override_is_the_one_place_that_points_firebase_at_a_base(fcm):
    import firebase_admin
    from firebase_admin import credentials

    app = firebase_admin.initialize_app(
        credentials.Certificate(fcm.credentials["service_account_file"]), name="override-test"
    )
    try:
        point_messaging_at(app, "http://127.0.0.1:9")
        service = messaging._get_messaging_service(app)
        assert service._fcm_url == f"http://127.0.0.1:9/v1/projects/{fcm.project_id}/messages:send"
    finally:
        firebase_admin.delete_app(app)
