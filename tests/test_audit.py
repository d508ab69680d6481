"""The audit trail: one entry per operation with the right actor, append-only in the
database, hash-chained so tampering is found, and archived without breaking the chain."""

from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.audit.models import ArchivedAuditEntry, AuditEntry
from apps.audit.trail import record, verify
from apps.notifications.models import Delivery
from apps.notifications.pipeline import STAGES
from apps.notifications.pipeline.deliver import deliver

pytestmark = pytest.mark.django_db
NOTIFY = "/api/v1/notifications/"


def entries(operation):
    return list(AuditEntry.objects.filter(operation=operation))


def test_every_operation_leaves_one_entry_with_its_actor(api, tenant_with_key, receiver, client):
    tenant, key = tenant_with_key
    actor = f"key:{key.split('_')[1]}"
    body = {
        "content": "hi",
        "recipients": [{"user_id": "u"}],
        "channels": [{"type": "webhook", "config": {"url": receiver.url()}}],
    }
    created = api.post(NOTIFY, body, format="json", HTTP_USER_AGENT="acme-app/1.0").json()
    [accepted] = entries("notification.accepted")
    assert (accepted.actor, accepted.resource_id, accepted.user_agent) == (
        actor,
        created["id"],
        "acme-app/1.0",
    )
    assert accepted.request_id and accepted.metadata["deliveries"] == 1

    ids = list(Delivery.objects.values_list("id", flat=True))
    for stage in STAGES:
        ids = stage(ids)
    deliver("webhook", ids)
    [attempt] = entries("delivery.attempted")
    assert (attempt.actor, attempt.result, attempt.metadata["response_code"]) == (
        "system",
        "success",
        200,
    )

    api.post(
        "/api/v1/templates/",
        {"key": "t", "variants": [{"locale": "en", "body": "x"}]},
        format="json",
    )
    new_key = api.post("/api/v1/api-keys/", {"name": "ci"}, format="json").json()
    api.delete(f"/api/v1/api-keys/{new_key['id']}/")
    api.put("/api/v1/preferences/u/", {"channels": {"sms": {"enabled": False}}}, format="json")
    other = api.post(
        NOTIFY,
        {**body, "content": "again", "send_at": (timezone.now() + timedelta(hours=1)).isoformat()},
        format="json",
    ).json()
    api.post(f"{NOTIFY}{other['id']}/cancel/")
    integration = api.post(
        "/api/v1/integrations/",
        {"channel": "slack", "credentials": {"bot_token": "xoxb-1-secret-token"}},
        format="json",
    ).json()
    api.delete(f"/api/v1/integrations/{integration['id']}/")
    for operation, resource in [
        ("template.published", "t"),
        ("api_key.created", new_key["prefix"]),
        ("api_key.revoked", new_key["prefix"]),
        ("preference.changed", "u"),
        ("notification.cancelled", other["id"]),
        ("integration.saved", integration["id"]),
        ("integration.deleted", integration["id"]),
    ]:
        [entry] = entries(operation)
        assert (entry.actor, entry.resource_id) == (actor, resource), operation
    assert "secret" not in str(list(AuditEntry.objects.values_list("metadata", flat=True)))

    User.objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    Delivery.objects.filter(id=ids[0]).update(status="failed")
    client.post(
        "/admin/notifications/delivery/", {"action": "retry_failed", "_selected_action": ids}
    )
    [retried] = entries("admin.delivery_retried")
    assert retried.actor == "admin:root"
    assert verify(tenant.pk) == (AuditEntry.objects.count(), None)


def chain_of(tenant, count):
    for i in range(count):
        record(tenant, "test.op", "thing", str(i), actor="tester", metadata={"i": i})
    return list(AuditEntry.objects.filter(tenant=tenant).order_by("seq"))


def test_the_database_refuses_to_change_or_delete_entries(tenant):
    [entry] = chain_of(tenant, 1)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(result="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).result == "ok"


def test_verification_names_the_first_entry_altered_behind_our_back(tenant):
    entries_ = chain_of(tenant, 5)
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert f"{tenant.slug}: 5 entries, chain intact" in out.getvalue()
    with connection.cursor() as cursor:  # a database owner can switch the trigger off
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_append_only")
        cursor.execute(
            "UPDATE audit_auditentry SET metadata = '{\"i\": 99}' WHERE id = %s", [entries_[2].pk]
        )
        cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER audit_append_only")
    with pytest.raises(CommandError, match="chain broken at entry seq 3"):
        call_command("verify_audit", stdout=StringIO())
    assert verify(tenant.pk)[0] == 2


def test_archiving_keeps_the_chain_verifiable(tenant):
    with mock.patch(
        "apps.audit.trail.timezone.now", return_value=timezone.now() - timedelta(days=400)
    ):
        chain_of(tenant, 2)
    chain_of(tenant, 2)
    out = StringIO()
    call_command("archive_audit", "--days", "365", stdout=out)
    assert "archived 2 audit entries" in out.getvalue()
    assert ArchivedAuditEntry.objects.count() == 2 and AuditEntry.objects.count() == 2
    assert verify(tenant.pk) == (4, None)


def test_audit_api_lists_the_tenants_own_newest_first_and_filters(api, other_api):
    api.post(
        "/api/v1/templates/",
        {"key": "a", "variants": [{"locale": "en", "body": "x"}]},
        format="json",
    )
    api.put("/api/v1/preferences/u/", {"channels": {}}, format="json")
    listed = api.get("/api/v1/audit/").json()["results"]
    assert [e["operation"] for e in listed] == ["preference.changed", "template.published"]
    assert listed[1]["resource"] == {"type": "template", "id": "a"}
    assert (
        api.get("/api/v1/audit/?operation=template.published").json()["results"][0]["resource"][
            "id"
        ]
        == "a"
    )
    assert other_api.get("/api/v1/audit/").json()["results"] == []
    bad = api.get("/api/v1/audit/?created_after=yesterday")
    assert bad.status_code == 400 and "created_after" in bad.json()["error"]["details"]
