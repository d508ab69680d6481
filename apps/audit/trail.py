"""Writing and verifying the audit trail.

`record` / `record_many` are called explicitly by the service layer, inside the
transaction of the work they describe (batch work writes its entries in one
bulk insert). Entries are chained per tenant: hash = SHA-256(previous hash, entry), with
the chain head row locked while appending, so concurrent writers never fork the chain.
Never put secrets or message bodies in `metadata`.
"""

import contextvars
import hashlib
import json
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.db import connections, router, transaction
from django.utils import timezone

from apps.common.actor import actor_var
from apps.common.copy import insert_rows

from .models import ArchivedAuditEntry, AuditChain, AuditEntry

GENESIS = "0" * 64


@dataclass(frozen=True)
class Context:
    request_id: str = ""
    actor: str = "system"
    ip: str = ""
    user_agent: str = ""


_NO_REQUEST = Context()
context_var: contextvars.ContextVar[Context] = contextvars.ContextVar(
    "audit_context",
    default=_NO_REQUEST,
)


def set_context(**changes) -> None:
    current = context_var.get()
    context_var.set(Context(**{**current.__dict__, **changes}))


@dataclass
class Entry:
    operation: str
    resource_type: str
    resource_id: str = ""
    result: str = "ok"
    metadata: dict = field(default_factory=dict)
    duration_ms: int | None = None
    actor: str | None = None


def digest(prev_hash: str, entry) -> str:
    fields = {
        "tenant": entry.tenant_id,
        "seq": entry.seq,
        "created_at": entry.created_at.isoformat(),
        "request_id": entry.request_id,
        "actor": entry.actor,
        "operation": entry.operation,
        "resource_type": entry.resource_type,
        "resource_id": entry.resource_id,
        "result": entry.result,
        "duration_ms": entry.duration_ms,
        "ip": entry.ip,
        "user_agent": entry.user_agent,
        "metadata": entry.metadata,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()


def record_many(tenant_id: int, entries: list[Entry]) -> None:
    if not entries:
        return
    ctx = context_var.get()
    now = timezone.now()
    # No savepoint: the entries stand or fall with the work they describe.
    with transaction.atomic(savepoint=False):
        seq, last_hash = _reserve(tenant_id, len(entries))
        rows = []
        for item in entries:
            seq += 1
            row = SimpleNamespace(
                tenant_id=tenant_id,
                seq=seq,
                created_at=now,
                request_id=ctx.request_id,
                actor=(item.actor or actor_var.get() or ctx.actor)[:200],
                operation=item.operation,
                resource_type=item.resource_type,
                resource_id=str(item.resource_id)[:200],
                result=item.result,
                duration_ms=item.duration_ms,
                ip=ctx.ip,
                user_agent=ctx.user_agent[:300],
                # Hash what the database will give back: JSON round-trips the metadata.
                metadata=json.loads(json.dumps(item.metadata, default=str)),
                prev_hash=last_hash,
            )
            row.hash = last_hash = digest(last_hash, row)
            rows.append(vars(row))
        insert_rows(AuditEntry, rows)
        _chain_sql("UPDATE {table} SET last_hash = %s WHERE tenant_id = %s", [last_hash, tenant_id])


def _reserve(tenant_id: int, count: int) -> tuple[int, str]:
    """Lock the tenant's chain head until the transaction ends and take `count` sequence
    numbers: (the last number before them, the hash they chain from). One statement,
    written in SQL because this runs for every group of delivery attempts."""
    for _ in range(2):
        row = _chain_sql(
            "UPDATE {table} SET seq = seq + %s WHERE tenant_id = %s RETURNING seq, last_hash",
            [count, tenant_id],
        )
        if row is not None:
            return row[0] - count, row[1]
        AuditChain.objects.get_or_create(tenant_id=tenant_id)
    raise RuntimeError(f"no audit chain for tenant {tenant_id}")


def _chain_sql(sql: str, params: list):
    connection = connections[router.db_for_write(AuditChain)]
    table = connection.ops.quote_name(AuditChain._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)
        return cursor.fetchone() if cursor.description else None


def record(
    tenant,
    operation,
    resource_type,
    resource_id="",
    *,
    result="ok",
    actor=None,
    metadata=None,
    duration_ms=None,
) -> None:
    tenant_id = getattr(tenant, "pk", tenant)
    record_many(
        tenant_id,
        [
            Entry(
                operation,
                resource_type,
                str(resource_id),
                result,
                metadata or {},
                duration_ms,
                actor,
            )
        ],
    )


def verify(tenant_id: int) -> tuple[int, object | None]:
    """(entries checked, the first broken entry or None), archive first, then live."""
    previous, checked, expected_seq = GENESIS, 0, 1
    for model in (ArchivedAuditEntry, AuditEntry):
        for entry in model.objects.filter(tenant_id=tenant_id).order_by("seq").iterator():
            if entry.seq != expected_seq or entry.prev_hash != previous:
                return checked, entry
            if digest(previous, entry) != entry.hash:
                return checked, entry
            previous, checked, expected_seq = entry.hash, checked + 1, expected_seq + 1
    return checked, None
