"""Where a higher floor plugs into notifications without notifications importing it.

Escalation sits above notifications (it sends its levels through this app's services),
yet a notification is accepted with an `escalation` and shows its escalation's id. The
escalation app registers an implementation of `Escalations` when Django starts; without
it, a request naming an escalation is refused as unknown.
"""

from typing import Protocol


class Escalations(Protocol):
    def validate(self, tenant, value: dict) -> dict:
        """The cleaned `escalation` value, or raise a DRF ValidationError."""

    def start(self, notification, value: dict) -> None:
        """Create and schedule the escalation, inside the accepting transaction."""

    def public_id(self, notification) -> str | None: ...

    def render_extra(self, delivery) -> dict:
        """Template context for a delivery of an escalated notification."""


escalations: Escalations | None = None


def register_escalations(implementation: Escalations) -> None:
    global escalations
    escalations = implementation
