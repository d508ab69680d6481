"""Operations on tenants' keys and integrations, told to whoever listens (the audit
trail, a floor above, registers itself when Django starts)."""

from collections.abc import Callable

_listeners: list[Callable] = []


def listen(listener: Callable) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def emit(tenant, operation: str, resource_type: str, resource_id: str, **metadata) -> None:
    for listener in _listeners:
        listener(tenant, operation, resource_type, resource_id, metadata=metadata)
