"""The one outbound HTTP client for tenant-supplied URLs (webhooks, later Teams).

Hardened the way Saleor's webhook client is: explicit timeouts, no redirects, no proxy
from the environment, a response size cap, and a private-address filter. The filter
resolves the host once and pins the connection to the address it checked, so a DNS
answer that changes between check and connect (rebinding) cannot reach a private host.
"""

import ipaddress
import os
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

MAX_RESPONSE_BYTES = 64 * 1024
_lock = threading.Lock()
_clients: dict[int, httpx.Client] = {}


class BlockedDestination(Exception):
    """The URL points at an address this service must not reach."""


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    headers: httpx.Headers
    body: bytes


def get_client() -> httpx.Client:
    """A pooled client per process: Celery's prefork children must not share sockets."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        with _lock:
            client = _clients.get(pid)
            if client is None:
                client = httpx.Client(
                    timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS, connect=5.0),
                    follow_redirects=False,
                    trust_env=False,
                    limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
                )
                _clients[pid] = client
    return client


def _normalise_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return False
    return address.is_global and not address.is_multicast


def resolve_destination(host: str, port: int) -> str:
    """Return the IP to connect to, or raise BlockedDestination.

    A host listed in WEBHOOK_ALLOWED_PRIVATE_HOSTS is allowed exactly as spelled there;
    any other spelling (decimal, hex, IPv4-mapped IPv6) goes through the filter.
    """
    allowed = _normalise_host(host) in settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedDestination(f"cannot resolve host {host!r}: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not allowed:
        blocked = [str(a) for a in addresses if not _is_public(a)]
        if blocked:
            raise BlockedDestination(
                f"host {host!r} resolves to a private or reserved address ({blocked[0]})"
            )
    return str(addresses[0])


def _pinned_url(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedDestination(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ip = resolve_destination(parts.hostname, port)
    ip_host = f"[{ip}]" if ":" in ip else ip
    pinned = urlunsplit((parts.scheme, f"{ip_host}:{port}", parts.path or "/", parts.query, ""))
    return pinned, parts.netloc.rsplit("@", 1)[-1], parts.hostname


def post(url: str, content: bytes, headers: dict[str, str]) -> HttpResult:
    """POST to a tenant URL; network errors propagate as httpx exceptions."""
    pinned, host_header, sni_host = _pinned_url(url)
    request = get_client().build_request(
        "POST",
        pinned,
        content=content,
        headers={**headers, "Host": host_header},
        extensions={"sni_hostname": sni_host},
    )
    response = get_client().send(request, stream=True)
    try:
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= MAX_RESPONSE_BYTES:
                break
    finally:
        response.close()
    return HttpResult(response.status_code, response.headers, body[:MAX_RESPONSE_BYTES])
