"""`make demo`: the whole service on one machine, sending real notifications to local
SMTP and webhook sinks, then printing what arrived and where to look."""

import argparse
import hashlib
import hmac
import os
import shutil
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from notifications_project.devproviders import FakeFcm, FakeSlack, FakeTeams, FakeTwilio
from notifications_project.devsinks import SmtpSink, WebhookReceiver
from scripts.stack import ROOT, Stack, free_port, persistent_secret

TERMINAL = {"completed", "partially_failed", "failed", "cancelled", "blocked"}


class Providers:
    """Every local stand-in the demo sends to."""

    def __init__(self, data_dir: Path):
        self.smtp = SmtpSink().start()
        self.receiver = WebhookReceiver().start()
        self.twilio = FakeTwilio().start()
        self.slack = FakeSlack().start()
        self.teams = FakeTeams().start()
        self.fcm = FakeFcm().start()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.fcm_credentials = self.fcm.service_account_file(data_dir)

    def stop(self):
        for server in (self.smtp, self.receiver, self.twilio, self.slack, self.teams, self.fcm):
            server.stop()


def environment(data_dir: Path, providers: Providers, base_url: str) -> dict[str, str]:
    return {
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or persistent_secret(data_dir),
        "PUBLIC_BASE_URL": base_url,
        "EMAIL_URL": providers.smtp.url,
        "DEFAULT_FROM_EMAIL": "demo@notify.localhost",
        "WEBHOOK_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "RETRY_BACKOFF_SECONDS": "1",
        "CELERY_WORKER_SEND_TASK_EVENTS": "true",
        "TWILIO_ACCOUNT_SID": providers.twilio.account_sid,
        "TWILIO_AUTH_TOKEN": providers.twilio.auth_token,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE": providers.twilio.base_url,
        "SLACK_BOT_TOKEN": providers.slack.token,
        "SLACK_API_BASE": providers.slack.base_url,
        "FCM_CREDENTIALS_FILE": str(providers.fcm_credentials),
        "FCM_API_BASE": providers.fcm.base_url,
    }


def create_demo_tenant(stack: Stack) -> str:
    slug = f"demo-{int(time.time())}"
    output = stack.manage("create_tenant", slug, "--name", "Demo Shop")
    return output.strip().splitlines()[-1]


def send_examples(client: httpx.Client, providers: Providers) -> list[str]:
    receiver = providers.receiver
    receiver.script("/flaky", 500, 500, 200)
    # This number is refused by "Twilio" as invalid, so its recipient falls over to email.
    providers.twilio.fail_next("+4915112345678", (400, 21211, "Invalid 'To' Phone Number"))
    examples = [
        {
            "title": "Welcome, {{ recipient.first_name }}!",
            "content": "Hello {{ recipient.first_name }},\nyour order {{ order_id }} has shipped.",
            "recipients": [
                {
                    "user_id": "u1",
                    "email": "maria@example.com",
                    "metadata": {"first_name": "Maria"},
                },
                {"user_id": "u2", "email": "li@example.com", "metadata": {"first_name": "Li"}},
            ],
            "channels": [
                {"type": "email", "config": {"from_name": "Demo Shop"}},
                {"type": "webhook", "config": {"url": receiver.url("/orders")}},
            ],
            "metadata": {"order_id": "A-1017"},
        },
        {
            "title": "Deploy finished",
            "content": "Build {{ build }} is live.",
            "priority": "high",
            "recipients": [{"user_id": "ops"}],
            "channels": [{"type": "webhook", "config": {"url": receiver.url("/flaky")}}],
            "metadata": {"build": "2026.11.27-1"},
        },
        {
            "title": "Payment API errors above 5%",
            "content": "Error rate {{ rate }} on {{ service }} since {{ since }}.",
            "priority": "critical",
            "recipients": [
                {
                    "user_id": "oncall-1",
                    "phone": "+4917612345678",
                    "slack_id": "U0ONCALL1",
                    "push_tokens": ["device-token-oncall-1"],
                },
                {
                    "user_id": "oncall-2",
                    "phone": "+4915112345678",
                    "email": "li@example.com",
                    "push_tokens": ["device-token-oncall-2"],
                },
            ],
            "channels": [
                {"type": "sms", "config": {"max_length": 160}},
                {"type": "email", "config": {"fallback": True}},
                {"type": "slack", "config": {"channel": "#incidents", "create_thread": True}},
                {"type": "teams", "config": {"url": providers.teams.base_url + "/webhookb2/ops"}},
                {"type": "push", "config": {"sound": "alert.caf", "deep_link": "app://incidents"}},
            ],
            "metadata": {"rate": "7.2%", "service": "payments", "since": "09:41 UTC"},
        },
    ]
    template = {
        "key": "order-shipped",
        "variants": [
            {
                "locale": "en",
                "subject": "Order {{ order_id }} shipped",
                "body": "{{ total|format_currency('EUR') }}, "
                "shipped {{ at|format_datetime('short') }}",
            },
            {
                "locale": "de",
                "subject": "Bestellung {{ order_id }} versandt",
                "body": "{{ total|format_currency('EUR') }}, "
                "versandt {{ at|format_datetime('short') }}",
            },
        ],
    }
    client.post("/api/v1/templates/", json=template).raise_for_status()
    examples.append(
        {
            "template": "order-shipped",
            "recipients": [
                {
                    "user_id": "jonas",
                    "email": "jonas@example.de",
                    "locale": "de",
                    "timezone": "Europe/Berlin",
                },
                {
                    "user_id": "amy",
                    "email": "amy@example.com",
                    "locale": "en-US",
                    "timezone": "America/New_York",
                },
            ],
            "channels": [{"type": "email"}],
            "metadata": {"order_id": "B-204", "total": "1234.5", "at": "2026-11-27T08:30:00Z"},
        }
    )
    ids = []
    for body in examples:
        response = client.post("/api/v1/notifications/", json=body)
        if response.status_code != 202:
            raise SystemExit(f"the demo's own request was refused: {response.text}")
        ids.append(response.json()["id"])
    bad = client.post(
        "/api/v1/notifications/",
        json={"content": "x", "recipients": [{}], "channels": [{"type": "email"}]},
    )
    print(f"  a bad request is refused: {bad.status_code} {bad.json()['error']['message']}")
    return ids


def wait_terminal(client: httpx.Client, ids: list[str], timeout: float = 90.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        details = [client.get(f"/api/v1/notifications/{i}/").json() for i in ids]
        if all(d["status"] in TERMINAL for d in details) or time.monotonic() > deadline:
            return details
        time.sleep(0.5)


def confirm_sms(providers: Providers) -> None:
    """Play Twilio's part: report each accepted SMS delivered, with a signed callback."""
    for sid in list(providers.twilio.messages):
        status = providers.twilio.send_status(sid, "delivered")
        print(f"  Twilio status callback for {sid[:12]}...: HTTP {status}")


def report(details, providers: Providers, secret: str) -> None:
    smtp, receiver = providers.smtp, providers.receiver
    print("\nNotifications:")
    for detail in details:
        print(f"  {detail['id']}  {detail['status']}")
        for d in detail["deliveries"]:
            print(
                f"    {d['channel']:8} {d['recipient']:9} {d['status']:10} "
                f"attempts={d['attempts']} cost={d['cost']} {d['error'][:50]}"
            )
    print(f"\nEmails that arrived at the local SMTP server ({len(smtp.messages)}):")
    for item in smtp.messages:
        message = item["message"]
        print(f"  to {item['to'][0]:22} subject {message['Subject']!r}  {message['Message-ID']}")
    print(f"\nWebhooks that arrived at the local receiver ({len(receiver.requests)}):")
    for request in receiver.requests:
        headers = request["headers"]
        signed = f"{headers['X-Notify-Timestamp']}.".encode() + request["body"]
        expected = "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        verified = hmac.compare_digest(expected, headers["X-Notify-Signature"])
        print(
            f"  {request['path']:8} answered {request['status']}  "
            f"delivery {headers['X-Notify-Delivery-Id']}  signature ok: {verified}"
        )
    print("\nAt the local provider stand-ins:")
    for sms in providers.twilio.messages.values():
        print(f"  Twilio SMS to {sms['To']}: {sms['Body']!r}")
    for post in providers.slack.received("chat.postMessage"):
        print(f"  Slack chat.postMessage: {post['body'][:90].decode()}...")
    for card in providers.teams.received("/webhookb2"):
        print(f"  Teams Adaptive Card: {len(card['body'])} bytes")
    for push in providers.fcm.received("messages:send"):
        print(f"  FCM messages:send: {push['body'][:80].decode()}...")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="stop after the report")
    args = parser.parse_args()
    data_dir = Path(os.environ.get("DATA_DIR", ROOT / "var" / "demo"))
    shutil.rmtree(data_dir / "broker", ignore_errors=True)
    providers = Providers(data_dir)
    web_port, flower_port = free_port(8000), free_port(5555)
    base_url = f"http://127.0.0.1:{web_port}"
    stack = Stack(environment(data_dir, providers, base_url), data_dir / "logs")
    flower_auth = f"admin:{os.urandom(6).hex()}"
    try:
        print("Preparing the database (migrate, static files)...")
        stack.manage("migrate", "--noinput")
        stack.manage("collectstatic", "--noinput")
        stack.start_web(web_port)
        stack.start_worker(events=True)
        stack.start_beat()
        stack.start_flower(flower_port, flower_auth)
        stack.wait_ready(base_url)
        key = create_demo_tenant(stack)
        client = httpx.Client(
            base_url=base_url, timeout=10, headers={"Authorization": f"Bearer {key}"}
        )
        secret = client.get("/api/v1/tenant/").json()["webhook_signing_secret"]
        print("Sending demo notifications...")
        ids = send_examples(client, providers)
        wait_terminal(client, ids)
        confirm_sms(providers)
        details = wait_terminal(client, ids)
        report(details, providers, secret)
        print(
            f"\nAPI docs:  {base_url}/api/docs/\nAdmin:     {base_url}/admin/ "
            f"(python manage.py createsuperuser)\nFlower:    http://127.0.0.1:{flower_port}/ "
            f"(user:password {flower_auth})\nMetrics:   {base_url}/metrics\n"
            f"API key:   {key}\nLogs:      {data_dir / 'logs'}"
        )
        if not args.once:
            print("\nRunning; Ctrl-C stops everything.")
            while True:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        providers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
