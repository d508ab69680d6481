"""Local servers that speak the providers' protocols, for the demo, the benchmark and the
tests: SMTP (aiosmtpd) and an HTTP webhook receiver with scripted answers."""

import json
import socket
import threading
import time
from collections import defaultdict, deque
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """An aiosmtpd server keeping every message; `reject` maps an address to an SMTP
    reply such as "550 5.1.1 no such user" or "451 4.3.0 try later" (consumed in order
    when given as a list)."""

    def __init__(self):
        self.messages = []
        self.reject: dict[str, deque] = {}
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def reject_next(self, address: str, *replies: str) -> None:
        self.reject[address] = deque(replies)

    async def handle_RCPT(self, server: SMTP, session, envelope, address, rcpt_options):
        replies = self.reject.get(address)
        if replies:
            return replies.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append({"to": list(envelope.rcpt_tos), "message": parsed})
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.05)
        raise AssertionError(f"expected {count} emails, got {len(self.messages)}")


class WebhookReceiver:
    """A threaded HTTP/1.1 server recording every POST. `script(path, 500, 500, 200)`
    makes the next requests to that path answer those statuses in order."""

    def __init__(self, delay: float = 0.0):
        self.requests: list[dict] = []
        self.scripts: dict[str, deque] = defaultdict(deque)
        self.delay = delay
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *statuses) -> None:
        self.scripts[path].extend(statuses)

    def received_ids(self) -> list[str]:
        with self.lock:
            return [r["headers"].get("X-Notify-Delivery-Id") for r in self.requests]

    def wait_for(self, count: int, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return self.requests
            time.sleep(0.05)
        raise AssertionError(f"expected {count} webhooks, got {len(self.requests)}")

    def _answer(self, path: str):
        with self.lock:
            queue = self.scripts.get(path)
            answer = queue.popleft() if queue else 200
        return answer if isinstance(answer, tuple) else (answer, {})

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, headers = receiver._answer(self.path)
                with receiver.lock:
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "status": status,
                        }
                    )
                reply = json.dumps({"ok": 200 <= status < 300}).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        return Handler
