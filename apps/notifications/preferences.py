"""Recipients' preferences: opted-out channels, quiet hours, one-click unsubscribe.

Unsubscribe links carry a token signed with Django's signer naming (tenant, user,
channel): no login, and no way to unsubscribe someone else. GET shows a confirmation
page (mail scanners follow links, so GET must not change anything); POST unsubscribes,
which is also what RFC 8058 one-click (`List-Unsubscribe-Post`) sends.
"""

import zoneinfo
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit.trail import record
from apps.channels.registry import channel_types
from apps.common.serializers import StrictSerializer
from apps.tenants.models import Tenant

from .models import Preference
from .serializers import validate_timezone

_SALT = "notifications.unsubscribe"
# No timestamp: the same recipient and channel always get the same link.
_SIGNER = signing.Signer(salt=_SALT)


def unsubscribe_url(tenant_id: int, user_id: str, channel: str) -> str:
    token = _SIGNER.sign_object({"t": tenant_id, "u": user_id, "c": channel}, compress=True)
    return f"{settings.PUBLIC_BASE_URL}/u/{token}/"


def unsubscribe_url_for(delivery) -> str:
    if not delivery.recipient_id:
        return ""
    return unsubscribe_url(delivery.tenant_id, delivery.recipient_id, delivery.channel)


def preferences_for(tenant_id: int, user_ids) -> dict[str, Preference]:
    ids = {u for u in user_ids if u}
    if not ids:
        return {}
    rows = Preference.objects.filter(tenant_id=tenant_id, user_id__in=ids)
    return {p.user_id: p for p in rows}


def quiet_until(quiet_hours: dict | None, now: datetime) -> datetime | None:
    """When the quiet window containing `now` ends, or None outside it."""
    if not quiet_hours:
        return None
    zone = zoneinfo.ZoneInfo(quiet_hours.get("timezone") or "UTC")
    local = now.astimezone(zone)
    start, end = time.fromisoformat(quiet_hours["start"]), time.fromisoformat(quiet_hours["end"])
    clock = local.time()
    inside = start <= clock < end if start <= end else (clock >= start or clock < end)
    if not inside or start == end:
        return None
    ends = datetime.combine(local.date(), end, tzinfo=zone)
    if ends <= local:
        ends += timedelta(days=1)
    return ends


def opt_out(tenant_id: int, user_id: str, channel: str, reason: str) -> Preference:
    with transaction.atomic():
        preference, _ = Preference.objects.select_for_update().get_or_create(
            tenant_id=tenant_id, user_id=user_id
        )
        preference.channels = {**preference.channels, channel: {"enabled": False}}
        preference.reasons = {**preference.reasons, channel: reason}
        preference.save()
        record(
            tenant_id,
            "preference.changed",
            "preference",
            user_id,
            actor=f"recipient:{user_id}",
            metadata={"channel": channel, "enabled": False},
        )
    return preference


def _read(token: str) -> dict:
    try:
        payload = _SIGNER.unsign_object(token)
    except signing.BadSignature:
        raise Http404("This unsubscribe link is not valid.") from None
    return payload


@csrf_exempt  # the signed token in the URL is the authority; mail clients post without CSRF
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    payload = _read(token)
    tenant = Tenant.objects.filter(pk=payload["t"]).first()
    if tenant is None:
        raise Http404("This unsubscribe link is not valid.")
    context = {"tenant": tenant, "channel": payload["c"], "done": request.method == "POST"}
    if request.method == "POST":
        opt_out(tenant.pk, payload["u"], payload["c"], "one-click unsubscribe")
    return render(request, "unsubscribe.html", context)


class QuietHoursSerializer(StrictSerializer):
    start = serializers.RegexField(r"^([01]\d|2[0-3]):[0-5]\d$", help_text="HH:MM")
    end = serializers.RegexField(r"^([01]\d|2[0-3]):[0-5]\d$", help_text="HH:MM")
    timezone = serializers.CharField(max_length=64, validators=[validate_timezone])


class ChannelChoiceSerializer(StrictSerializer):
    enabled = serializers.BooleanField()


class PreferenceSerializer(StrictSerializer):
    channels = serializers.DictField(child=ChannelChoiceSerializer(), required=False, default=dict)
    quiet_hours = QuietHoursSerializer(allow_null=True, required=False, default=None)

    def validate_channels(self, value):
        unknown = sorted(set(value) - set(channel_types()))
        if unknown:
            raise serializers.ValidationError({k: ["Unknown channel type."] for k in unknown})
        return {k: dict(v) for k, v in value.items()}


class PreferenceView(APIView):
    """`GET`/`PUT /api/v1/preferences/<user_id>/`; a recipient never set answers the
    defaults (every channel on, no quiet hours)."""

    @extend_schema(responses=PreferenceSerializer)
    def get(self, request, user_id: str):
        found = Preference.objects.filter(tenant=request.tenant, user_id=user_id).first()
        body = {"channels": found.channels, "quiet_hours": found.quiet_hours} if found else {}
        return Response(PreferenceSerializer({"channels": {}, "quiet_hours": None, **body}).data)

    @extend_schema(request=PreferenceSerializer, responses=PreferenceSerializer)
    def put(self, request, user_id: str):
        payload = PreferenceSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        quiet = dict(data["quiet_hours"]) if data["quiet_hours"] else None
        with transaction.atomic():
            Preference.objects.update_or_create(
                tenant=request.tenant,
                user_id=user_id[:200],
                defaults={"channels": data["channels"], "quiet_hours": quiet},
            )
            record(
                request.tenant,
                "preference.changed",
                "preference",
                user_id[:200],
                metadata={"channels": data["channels"], "quiet_hours": bool(quiet)},
            )
        return Response(
            PreferenceSerializer({"channels": data["channels"], "quiet_hours": quiet}).data
        )
