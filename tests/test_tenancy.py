"""API keys, authentication and tenant isolation."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from apps.tenants.models import ApiKey
from tests.conftest import accept_one

pytestmark = pytest.mark.django_db


def test_request_without_key_is_401_with_error_shape():
    response = APIClient().get("/api/v1/tenant/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ntf_abc_def", "Basic abc", "Bearer"])
def test_bad_key_is_401(tenant, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/tenant/").status_code == 401


def test_key_with_right_prefix_but_wrong_secret_is_401(tenant_with_key):
    _tenant, key = tenant_with_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key[:-2]}xx")
    assert client.get("/api/v1/tenant/").status_code == 401


def test_tenant_endpoint_returns_the_callers_tenant(api, tenant):
    body = api.get("/api/v1/tenant/").json()
    assert body == {
        "slug": "acme",
        "name": "Acme Inc.",
        "default_locale": "en",
        "timezone": "UTC",
        "webhook_signing_secret": tenant.webhook_signing_secret,
    }


def test_keys_are_stored_hashed_and_shown_once(api, tenant):
    response = api.post("/api/v1/api-keys/", {"name": "ci"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "prefix", "key"}
    stored = ApiKey.objects.get(public_id=body["id"])
    assert body["key"] not in (stored.key_hash, stored.prefix)
    assert body["key"].startswith(f"ntf_{stored.prefix}_")
    listed = api.get("/api/v1/api-keys/").json()["results"]
    assert all("key" not in item for item in listed)
    assert stored.last_used_at is None


def test_revoked_key_stops_working(api):
    created = api.post("/api/v1/api-keys/", {"name": "temp"}, format="json").json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created['key']}")
    assert client.get("/api/v1/tenant/").status_code == 200
    assert api.delete(f"/api/v1/api-keys/{created['id']}/").status_code == 204
    assert client.get("/api/v1/tenant/").status_code == 401


def test_api_key_create_refuses_unknown_fields(api):
    response = api.post("/api/v1/api-keys/", {"name": "x", "scope": "all"}, format="json")
    assert response.status_code == 400
    assert "scope" in response.json()["error"]["details"]


def _api_routes():
    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    return [r for r in walk(get_resolver().url_patterns) if r.startswith("api/v1/")]


def _concrete(route: str, object_id: str) -> str:
    path = re.sub(r"<uuid:id>|\(\?P<(id|key|user_id|name)>[^)]*\)", object_id, route)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".")
    path = re.sub(r"\(\?P<format>[^)]*\)", "json", path)
    return "/" + path


def test_every_route_hides_another_tenants_objects(api, other_api, tenant):
    """Walk the router with a second tenant's key: every object route answers 404."""
    notification = accept_one(tenant)
    key = api.post("/api/v1/api-keys/", {"name": "k"}, format="json").json()
    integration = api.post(
        "/api/v1/integrations/",
        {"channel": "slack", "credentials": {"bot_token": "xoxb-1-abc"}},
        format="json",
    ).json()
    template = {"key": "welcome", "variants": [{"locale": "en", "body": "hi"}]}
    assert api.post("/api/v1/templates/", template, format="json").status_code == 201
    api.post(
        "/api/v1/contacts/",
        {"user_id": "ann", "role": "sre", "email": "a@example.com"},
        format="json",
    )
    policy = {"name": "oncall", "levels": [{"target_roles": ["sre"], "channels": ["email"]}]}
    assert api.post("/api/v1/escalation-policies/", policy, format="json").status_code == 201
    escalated = api.post(
        "/api/v1/notifications/",
        {
            "content": "down",
            "recipients": [],
            "channels": [{"type": "email"}],
            "escalation": {"policy": "oncall"},
        },
        format="json",
    ).json()
    escalation_id = api.get(f"/api/v1/notifications/{escalated['id']}/").json()["escalation"]
    ids = {
        "contact": "ann",
        "escalation-policie": "oncall",
        "escalation": escalation_id,
        "template": "welcome",
        "notification": str(notification.public_id),
        "api-key": key["id"],
        "integration": integration["id"],
    }
    object_routes = [
        r for r in _api_routes() if re.search(r"<uuid:id>|\(\?P<(id|key|user_id|name)>", r)
    ]
    assert object_routes, "the router exposes no object routes?"
    checked = 0
    # Deletes last, so every route still finds the caller's own objects.
    for method in ("get", "post", "delete"):
        for route in object_routes:
            plain = route.replace("^", "")
            object_id = next(v for k, v in ids.items() if plain.startswith(f"api/v1/{k}s/"))
            path = _concrete(route, object_id)
            foreign = getattr(other_api, method)(path, format="json")
            own = getattr(api, method)(path, format="json").status_code
            if own == 405:
                continue
            assert own != 404, (method, path)  # the walk reaches real objects
            assert foreign.status_code == 404, (method, path, foreign.status_code)
            assert foreign.json()["error"]["code"] == "not_found"
            checked += 1
    assert checked >= len(object_routes)
    assert api.get(f"/api/v1/notifications/{notification.public_id}/").status_code == 200
    assert other_api.get("/api/v1/templates/").json()["results"] == []
    assert other_api.get("/api/v1/notifications/").json()["results"] == []
