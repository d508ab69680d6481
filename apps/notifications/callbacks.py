"""Provider callbacks: what a provider tells us after the send (delivery receipts).

These views opt out of API-key authentication explicitly: the provider's own request
signature is what authenticates them, checked before anything is read or written.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.channels.sms import CALLBACK_STATUSES, valid_callback_signature

from .failover import fail_over
from .models import Delivery, DeliveryStatus
from .pipeline.providers import credentials_for
from .state import refresh_statuses

_AWAITING_RECEIPT = (DeliveryStatus.SENDING, DeliveryStatus.SENT)


def apply_receipt(delivery: Delivery, status: str, provider_message_id: str, error: str) -> bool:
    """Move a sent delivery to `delivered` or `failed` on the provider's word; a failure
    fails over. Conditional, so a late or repeated receipt changes nothing."""
    now = timezone.now()
    changes = {"provider_message_id": provider_message_id[:255], "claim_token": None}
    with transaction.atomic():
        rows = Delivery.objects.filter(id=delivery.id, status__in=_AWAITING_RECEIPT)
        if status == DeliveryStatus.DELIVERED:
            changed = rows.update(status=status, delivered_at=now, updated_at=now, **changes)
        else:
            changed = rows.update(status=status, error=error, updated_at=now, **changes)
            if changed:
                fail_over([delivery.id])
    if changed:
        refresh_statuses([delivery.notification_id])
    return bool(changed)


class TwilioStatusCallbackView(APIView):
    authentication_classes: list = []  # Twilio's X-Twilio-Signature authenticates
    permission_classes: list = []
    parser_classes = [FormParser]

    def post(self, request, delivery_id):
        delivery = (
            Delivery.objects.select_related("tenant")
            .filter(public_id=delivery_id, channel="sms")
            .first()
        )
        if delivery is None:
            raise NotFound("No such delivery.")
        params = request.data.dict()
        auth_token = credentials_for(delivery.tenant, "sms").get("auth_token") or ""
        # Twilio signs the URL it was given, which is built from PUBLIC_BASE_URL.
        url = settings.PUBLIC_BASE_URL + request.get_full_path()
        signature = request.headers.get("X-Twilio-Signature", "")
        if not valid_callback_signature(auth_token, url, params, signature):
            raise PermissionDenied("Invalid Twilio signature.")
        status = CALLBACK_STATUSES.get(params.get("MessageStatus", ""))
        if status:
            code = params.get("ErrorCode", "")
            error = f"Twilio reported {params['MessageStatus']}" + (
                f" (error {code})" if code else ""
            )
            apply_receipt(delivery, status, params.get("MessageSid", ""), error)
        return Response(status=204)
