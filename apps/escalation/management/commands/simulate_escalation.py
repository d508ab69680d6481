"""Print who an escalation policy would notify, on which channels, at which second, for
a given acknowledge (and resolve) time. Nothing is sent."""

from django.core.management.base import BaseCommand, CommandError

from apps.escalation.models import EscalationPolicy, State
from apps.escalation.services import condition_holds, delay_of, expanded_levels, targets
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = "Dry-run an escalation policy: who is notified when, for a given acknowledge time."

    def add_arguments(self, parser):
        parser.add_argument("policy")
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--ack-at", type=float, default=None, help="seconds after trigger")
        parser.add_argument("--resolve-at", type=float, default=None)

    def handle(self, *args, policy, tenant, ack_at, resolve_at, **options):
        found = EscalationPolicy.objects.filter(tenant__slug=tenant, name=policy).first()
        if found is None:
            raise CommandError(f"no policy {policy!r} for tenant {tenant!r}")
        snapshot = {"levels": found.levels, "repeat_last": found.repeat_last}
        tenant_id = Tenant.objects.get(slug=tenant).pk
        at = 0.0
        for number, level in enumerate(expanded_levels(snapshot), start=1):
            at += delay_of(level)
            state = self._state_at(at, ack_at, resolve_at)
            if state == State.RESOLVED:
                self.stdout.write(f"t+{at:>7.0f}s  level {number}: resolved before it fires; stop")
                return
            who = ", ".join(c.user_id for c in targets(tenant_id, level)) or "nobody"
            if condition_holds(state, level.get("condition", "always")):
                channels = ", ".join(level["channels"])
                self.stdout.write(f"t+{at:>7.0f}s  level {number}: {who} via {channels}")
            else:
                reason = level.get("condition")
                self.stdout.write(f"t+{at:>7.0f}s  level {number}: skipped ({reason}; {state})")
        self.stdout.write("no more levels")

    @staticmethod
    def _state_at(at, ack_at, resolve_at) -> str:
        if resolve_at is not None and resolve_at <= at:
            return State.RESOLVED
        if ack_at is not None and ack_at <= at:
            return State.ACKNOWLEDGED
        return State.TRIGGERED
