"""Strict parsing of environment variables.

A bad value stops start-up with a message naming the variable, instead of a silent
default that surfaces later as a mystery.
"""

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    value = _raw(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    value = _raw(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value in (None, ""):
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, schemes: set[str], default: str | None = None) -> str | None:
    value = env_str(name, default)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise ImproperlyConfigured(f"{name} must use one of {allowed}, got {value!r}")
    if parts.scheme not in {"filesystem", "memory", "sqlite"} and not parts.hostname:
        raise ImproperlyConfigured(f"{name} has no host: {value!r}")
    return value


def env_map(name: str, default: dict[str, float] | None = None) -> dict[str, float]:
    """`key=number` pairs separated by commas, e.g. `sms=0.0079,email=0.0001`."""
    value = _raw(name)
    if value in (None, ""):
        return dict(default or {})
    result: dict[str, float] = {}
    for item in value.split(","):
        key, sep, number = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            result[key.strip()] = float(number)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must be key=number pairs separated by commas, got {item.strip()!r}"
            ) from None
        if result[key.strip()] < 0:
            raise ImproperlyConfigured(f"{name}: {key.strip()} must not be negative")
    return result
