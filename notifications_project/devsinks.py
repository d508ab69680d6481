"""Local servers that speak the providers' protocols, for the demo, the benchmark and the
tests: SMTP (aiosmtpd) and an HTTP webhook receiver with scripted answers."""

import asyncio
import contextlib
import json
import multiprocessing
import re
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


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a batch opens a connection per lane at once


class FakeProvider:
    """A threaded HTTP/1.1 server; subclasses answer in `respond`."""

    def __init__(self):
        self.requests: list[dict] = []
        self.failures: dict[str, deque] = defaultdict(deque)
        self.lock = threading.Lock()
        self.open_connections: set[socket.socket] = set()
        self.server = _HttpServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        # Keep-alive connections outlive the listening socket: a later server given the
        # same port would otherwise see pooled clients answered by this one.
        with self.lock:
            connections, self.open_connections = self.open_connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def fail_next(self, key: str, *answers) -> None:
        """The next requests for `key` (a phone number, a channel, a token, a path) get
        these answers, in order; each is what `_failure` turns into a response."""
        with self.lock:
            self.failures[key].extend(answers)

    def _take_failure(self, key: str):
        with self.lock:
            queue = self.failures.get(key)
            return queue.popleft() if queue else None

    def received(self, path_part: str = "") -> list[dict]:
        with self.lock:
            return [r for r in self.requests if path_part in r["path"] and r["status"] < 300]

    def wait_for(self, count: int, path_part: str = "", timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.received(path_part)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} requests to {path_part!r}, got {len(found)}")

    def respond(self, method: str, path: str, headers, body: bytes):
        raise NotImplementedError

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with provider.lock:
                    provider.open_connections.add(self.connection)

            def finish(self):
                with provider.lock:
                    provider.open_connections.discard(self.connection)
                super().finish()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, reply = provider.respond("POST", self.path, self.headers, body)
                with provider.lock:
                    provider.requests.append(
                        {
                            "at": time.time(),
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "status": status,
                        }
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        return Handler


class WebhookReceiver(FakeProvider):
    """A webhook receiver recording every POST. `script(path, 500, 500, 200)` makes the
    next requests to that path answer those statuses in order (an answer may also be
    `(status, {headers})`)."""

    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.delay = delay

    def url(self, path: str = "/hook") -> str:
        return f"{self.base_url}{path}"

    def script(self, path: str, *statuses) -> None:
        self.fail_next(path, *statuses)

    def received_ids(self) -> list[str]:
        with self.lock:
            return [r["headers"].get("X-Notify-Delivery-Id") for r in self.requests]

    def wait_for(self, count: int, timeout: float = 20.0):
        """Waits for `count` requests, whatever they were answered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return self.requests
            time.sleep(0.05)
        raise AssertionError(f"expected {count} webhooks, got {len(self.requests)}")

    def respond(self, method, path, headers, body):
        if self.delay:
            time.sleep(self.delay)
        answer = self._take_failure(path) or 200
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        reply = json.dumps({"ok": 200 <= status < 300}).encode()
        return status, {**extra, "Content-Type": "application/json"}, reply


_OK_REPLY = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
)


class _CountingHttpProtocol(asyncio.Protocol):
    """Just enough HTTP/1.1 (keep-alive, Content-Length bodies) to answer 200 quickly;
    http.server spends far more CPU per request than the service does to send one."""

    def __init__(self, counter):
        self.counter = counter
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            match = _CONTENT_LENGTH.search(self.buffer, 0, head_end)
            length = int(match.group(1)) if match else 0
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self.counter.value += 1
            self.transport.write(_OK_REPLY)


_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


def _serve_counting(port, counter):
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _CountingHttpProtocol(counter), "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


def _serve_smtp(port):
    sink = SmtpSink()
    sink.controller = Controller(sink, hostname="127.0.0.1", port=port)
    sink.start()
    threading.Event().wait()


class SinkProcess:
    """A sink in its own process, so the benchmark measures the service, not the GIL
    contention of a sink sharing a process with the load generator."""

    def __init__(self, kind: str):
        self.port = free_port()
        self.received = multiprocessing.RawValue("q", 0)
        target, args = (
            (_serve_counting, (self.port, self.received))
            if kind == "http"
            else (_serve_smtp, (self.port,))
        )
        self.process = multiprocessing.Process(target=target, args=args, daemon=True)

    def start(self):
        self.process.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("sink did not start")

    def stop(self):
        self.process.terminate()
        self.process.join(5)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def smtp_url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"
