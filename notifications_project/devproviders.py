"""Local HTTP servers that answer as Twilio, Slack, Microsoft Teams and FCM do, errors
included, for the demo and the tests. Each records what it received (with the time it
arrived, so tests can measure rates at the receiving end) and takes scripted failures.

They are deliberately small: just the endpoints this service calls, answering with the
status codes and JSON bodies the real providers document.
"""

import base64
import json
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import parse_qsl

from .devsinks import FakeProvider


def _json(status: int, payload, headers: dict | None = None):
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(payload).encode(),
    )


class FakeTwilio(FakeProvider):
    """`POST /2010-04-01/Accounts/{sid}/Messages.json` with basic auth, as Twilio's REST
    API answers it. `fail_next("+1555...", (400, 21211, "Invalid 'To' Phone Number"))`.
    `signed_status(sid, "delivered")` builds the status callback Twilio would send."""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "twilio-test-token"):  # noqa: S107 - a fake
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: dict[str, dict] = {}

    def respond(self, method, path, headers, body):
        expected = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if path != expected:
            return _json(404, {"code": 20404, "message": "The requested resource was not found"})
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if headers.get("Authorization") != f"Basic {credentials}":
            return _json(401, {"code": 20003, "message": "Authenticate", "status": 401})
        form = dict(parse_qsl(body.decode()))
        failure = self._take_failure(form.get("To", ""))
        if failure:
            status, code, message = failure
            extra = {"Retry-After": "1"} if status == 429 else {}
            return _json(status, {"code": code, "message": message, "status": status}, extra)
        sid = "SM" + uuid.uuid4().hex
        with self.lock:
            self.messages[sid] = form
        return _json(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "status_callback": form.get("StatusCallback"),
            },
        )

    def signed_status(self, sid: str, status: str, error_code: str | None = None):
        """(url, params, signature) of the status callback for message `sid`."""
        from twilio.request_validator import RequestValidator

        form = self.messages[sid]
        params = {
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "MessageStatus": status,
            "To": form.get("To", ""),
            "From": form.get("From", ""),
        }
        if error_code:
            params["ErrorCode"] = error_code
        url = form["StatusCallback"]
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        return url, params, signature

    def send_status(self, sid: str, status: str, error_code: str | None = None) -> int:
        """POST the signed status callback to the service, as Twilio would."""
        url, params, signature = self.signed_status(sid, status, error_code)
        data = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in params.items()).encode()
        headers = {"X-Twilio-Signature": signature}
        request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - ours
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status


class FakeSlack(FakeProvider):
    """Slack's Web API `chat.postMessage` (Bearer token, JSON), answering `{"ok": ...}`
    as Slack does, and incoming webhooks under `/hooks/...` (plain-text "ok").
    `fail_next("#ops", "channel_not_found")` or `fail_next("#ops", "ratelimited")`."""

    def __init__(self, token: str = "xoxb-test-token"):  # noqa: S107 - a fake
        super().__init__()
        self.token = token
        self.counter = 0

    def respond(self, method, path, headers, body):
        if path.startswith("/hooks/"):
            failure = self._take_failure(path)
            if failure:
                status, text = failure
                return status, {"Content-Type": "text/plain"}, text.encode()
            return 200, {"Content-Type": "text/plain"}, b"ok"
        if path != "/api/chat.postMessage":
            return _json(200, {"ok": False, "error": "unknown_method"})
        if headers.get("Authorization") != f"Bearer {self.token}":
            return _json(200, {"ok": False, "error": "invalid_auth"})
        payload = json.loads(body or b"{}")
        failure = self._take_failure(payload.get("channel", ""))
        if failure == "ratelimited":
            return _json(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
        if failure:
            return _json(200, {"ok": False, "error": failure})
        with self.lock:
            self.counter += 1
            ts = f"{int(time.time())}.{self.counter:06d}"
        return _json(200, {"ok": True, "channel": payload.get("channel"), "ts": ts})


class FakeTeams(FakeProvider):
    """A Teams incoming webhook: `1` on success; `fail_next(path, (429, text))`."""

    def respond(self, method, path, headers, body):
        failure = self._take_failure(path)
        if failure:
            status, text = failure
            return status, {"Content-Type": "text/plain"}, text.encode()
        json.loads(body)  # a malformed card would be a 400 at Microsoft too
        return 200, {"Content-Type": "text/plain"}, b"1"


class FakeFcm(FakeProvider):
    """Google's OAuth token endpoint and FCM v1 `messages:send`.
    `fail_next(token, "UNREGISTERED")` (404), `"INVALID_ARGUMENT"` (400),
    `"UNAVAILABLE"` (503) or `"QUOTA_EXCEEDED"` (429)."""

    ERRORS = {
        "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
        "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "The registration token is not valid"),
        "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
        "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded."),
    }

    def __init__(self, project_id: str = "notify-local"):
        super().__init__()
        self.project_id = project_id
        self.access_token = "ya29.local-" + uuid.uuid4().hex

    def respond(self, method, path, headers, body):
        if path == "/token":
            return _json(200, {"access_token": self.access_token, "expires_in": 3600})
        if path != f"/v1/projects/{self.project_id}/messages:send":
            return _json(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": path}})
        if headers.get("Authorization") != f"Bearer {self.access_token}":
            return _json(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
        message = json.loads(body)["message"]
        failure = self._take_failure(message.get("token", ""))
        if failure:
            status, grpc_status, text = self.ERRORS[failure]
            detail = {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError"}
            detail["errorCode"] = failure
            error = {"code": status, "status": grpc_status, "message": text, "details": [detail]}
            return _json(status, {"error": error}, {"Retry-After": "1"} if status == 429 else {})
        return _json(200, {"name": f"projects/{self.project_id}/messages/{uuid.uuid4().int}"})

    def service_account_file(self, folder: Path) -> Path:
        """A service-account JSON with a fresh RSA key whose token_uri is this server."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        info = {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": uuid.uuid4().hex,
            "private_key": pem,
            "client_email": f"notify@{self.project_id}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.base_url}/token",
        }
        path = Path(folder) / f"fcm-{self.port}.json"
        path.write_text(json.dumps(info))
        return path
