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
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

MAX_RESPONSE_BYTES = 64 * 1024
POOL_SIZE = 32
RESOLVE_CACHE_SECONDS = 10.0
_resolved: dict[tuple[str, int], tuple[float, list]] = {}
_lock = threading.Lock()
_pools: dict[tuple, urllib3.HTTPConnectionPool] = {}
# urllib3 rather than httpx: it spends half the CPU per request (measured in RECIPES.md),
# and its pools accept an address plus a separate TLS server name, which is what pinning
# the checked address needs.
HttpError = urllib3.exceptions.HTTPError


class BlockedDestination(Exception):
    """The URL points at an address this service must not reach."""


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    headers: urllib3.HTTPHeaderDict  # case-insensitive, as HTTP header names are
    body: bytes


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's delay in seconds (the HTTP-date form is rare from APIs
    and then ignored: the retry policy's own backoff applies)."""
    value = (value or "").strip()
    return float(value) if value.isdigit() else None


def _pool(scheme: str, ip: str, port: int, hostname: str) -> urllib3.HTTPConnectionPool:
    """One pool per destination and process: prefork children must not share sockets."""
    key = (os.getpid(), scheme, ip, port, hostname)
    pool = _pools.get(key)
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                timeout = urllib3.Timeout(connect=5.0, read=settings.WEBHOOK_TIMEOUT_SECONDS)
                options = {"maxsize": POOL_SIZE, "timeout": timeout, "retries": False}
                if scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        ip,
                        port,
                        server_hostname=hostname,
                        assert_hostname=hostname,
                        cert_reqs="CERT_REQUIRED",
                        **options,
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(ip, port, **options)
                _pools[key] = pool
    return pool


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
    addresses = _resolve(host, port)
    if not allowed:
        blocked = [str(a) for a in addresses if not _is_public(a)]
        if blocked:
            raise BlockedDestination(
                f"host {host!r} resolves to a private or reserved address ({blocked[0]})"
            )
    return str(addresses[0])


def _resolve(host: str, port: int) -> list:
    """getaddrinfo, remembered for a few seconds: a batch posts to the same few hosts
    hundreds of times, and the lookup showed in profiles. The filter still checks the
    remembered addresses on every call, and connections go to the address checked."""
    key = (host, port)
    now = time.monotonic()
    cached = _resolved.get(key)
    if cached and cached[0] > now:
        return cached[1]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedDestination(f"cannot resolve host {host!r}: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if len(_resolved) > 10_000:
        _resolved.clear()
    _resolved[key] = (now + RESOLVE_CACHE_SECONDS, addresses)
    return addresses


def post(url: str, content: bytes, headers: dict[str, str]) -> HttpResult:
    """POST to a tenant URL, connecting only to the address that passed the filter.
    Network errors propagate as `HttpError`; redirects are returned, never followed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedDestination(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ip = resolve_destination(parts.hostname, port)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    response = _pool(parts.scheme, ip, port, parts.hostname).urlopen(
        "POST",
        target,
        body=content,
        headers={**headers, "Host": parts.netloc.rsplit("@", 1)[-1]},
        redirect=False,
        retries=False,
        preload_content=False,
        assert_same_host=False,
    )
    try:
        body = response.read(MAX_RESPONSE_BYTES + 1)
        if len(body) > MAX_RESPONSE_BYTES:
            response.close()  # the rest is unread, so this connection cannot be reused
        return HttpResult(response.status, response.headers, body[:MAX_RESPONSE_BYTES])
    finally:
        response.release_conn()
