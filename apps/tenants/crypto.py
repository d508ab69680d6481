"""Encryption at rest for tenants' provider credentials (Fernet, with key rotation).

CREDENTIAL_KEYS lists Fernet keys, newest first: new secrets are encrypted with the
first, and any listed key decrypts. Rotating is: put a new key first, run
`manage.py rotate_credentials`, then drop the old key. Without CREDENTIAL_KEYS a key is
derived from SECRET_KEY, so changing SECRET_KEY then needs the old one listed.
"""

import base64
import functools
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "decrypt", "encrypt", "rotate"]


def derived_key(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(b"credentials:" + secret.encode()).digest())


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    try:
        fernets = [Fernet(key) for key in keys] or [Fernet(derived_key(secret_key))]
    except ValueError as exc:
        raise ImproperlyConfigured(f"CREDENTIAL_KEYS holds an invalid Fernet key: {exc}") from None
    return MultiFernet(fernets)


def _current() -> MultiFernet:
    return _fernet(tuple(settings.CREDENTIAL_KEYS), settings.SECRET_KEY)


def encrypt(values: dict) -> str:
    return _current().encrypt(json.dumps(values).encode()).decode()


def decrypt(token: str) -> dict:
    return json.loads(_current().decrypt(token.encode()))


def rotate(token: str) -> str:
    """The same secret, encrypted again with the newest key."""
    return _current().rotate(token.encode()).decode()
