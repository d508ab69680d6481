"""Contacts, escalation policies and escalations; one-click links and Slack buttons."""

import json

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.views import APIView
from slack_sdk.signature import SignatureVerifier

from apps.common.errors import Conflict
from apps.common.views import TenantScopedModelViewSet, TenantScopedViewSet
from apps.tenants.models import Contact

from . import services
from .models import ActionLink, Escalation, EscalationPolicy
from .serializers import (
    ByTextSerializer,
    ContactSerializer,
    EscalationSerializer,
    PolicySerializer,
)

NAME_REGEX = "[-a-zA-Z0-9_.@]+"


class ContactViewSet(TenantScopedModelViewSet):
    """People escalations reach, addressed by `user_id`."""

    serializer_class = ContactSerializer
    lookup_field = lookup_url_kwarg = "user_id"
    lookup_value_regex = NAME_REGEX

    def tenant_queryset(self, tenant):
        return Contact.objects.filter(tenant=tenant)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "tenant": self.request.tenant}


class EscalationPolicyViewSet(TenantScopedModelViewSet):
    """Escalation policies, addressed by `name`. Editing one never changes an escalation
    already running: each keeps the snapshot taken when it was triggered."""

    serializer_class = PolicySerializer
    lookup_field = lookup_url_kwarg = "name"
    lookup_value_regex = NAME_REGEX

    def tenant_queryset(self, tenant):
        return EscalationPolicy.objects.filter(tenant=tenant)

    def perform_create(self, serializer):
        if self.get_queryset().filter(name=serializer.validated_data["name"]).exists():
            raise Conflict("A policy with this name exists.")
        serializer.save(tenant=self.request.tenant)


class EscalationViewSet(mixins.RetrieveModelMixin, TenantScopedViewSet):
    serializer_class = EscalationSerializer

    def tenant_queryset(self, tenant):
        return Escalation.objects.filter(tenant=tenant).select_related("notification")

    @extend_schema(request=ByTextSerializer, responses=EscalationSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, id=None):
        return self._move(request, services.acknowledge)

    @extend_schema(request=ByTextSerializer, responses=EscalationSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, id=None):
        return self._move(request, services.resolve)

    def _move(self, request, move):
        escalation = self.get_object()
        payload = ByTextSerializer(data=request.data or {})
        payload.is_valid(raise_exception=True)
        try:
            escalation = move(escalation, payload.validated_data["by"])
        except services.InvalidTransition as exc:
            raise Conflict(str(exc)) from None
        return Response(EscalationSerializer(escalation).data)


def _perform(link: ActionLink, by: str) -> str:
    move = services.acknowledge if link.action == "acknowledge" else services.resolve
    try:
        move(link.escalation, by)
    except services.InvalidTransition as exc:
        return str(exc)
    return f"Escalation {link.action}d."


@csrf_exempt  # the unguessable code in the URL is the authority
@require_http_methods(["GET", "POST"])
def action_link(request, code: str):
    """GET shows what the link would do (mail scanners follow links); POST does it."""
    link = ActionLink.objects.select_related("escalation__notification").filter(code=code).first()
    if link is None:
        raise Http404("This link is not valid.")
    context = {"link": link, "notification": link.escalation.notification, "done": None}
    if request.method == "POST":
        context["done"] = _perform(link, link.user_id)
    return render(request, "escalation_action.html", context)


class SlackInteractionView(APIView):
    """Slack's interactive callback for the acknowledge/resolve buttons. Slack's request
    signature (X-Slack-Signature over the raw body, within five minutes) is checked
    before anything is read."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [FormParser]

    def post(self, request):
        verifier = SignatureVerifier(settings.SLACK_SIGNING_SECRET or "")
        body = request.body
        if not settings.SLACK_SIGNING_SECRET or not verifier.is_valid(
            body,
            request.headers.get("X-Slack-Request-Timestamp", "0"),
            request.headers.get("X-Slack-Signature", ""),
        ):
            raise PermissionDenied("Invalid Slack signature.")
        payload = json.loads(request.POST.get("payload", "{}"))
        by = (payload.get("user") or {}).get("id", "")
        results = []
        for pressed in payload.get("actions", []):
            link = ActionLink.objects.filter(code=pressed.get("value", "")).first()
            if link is not None and pressed.get("action_id") == f"escalation_{link.action}":
                results.append(_perform(link, f"slack:{by}"))
        return Response({"text": " ".join(results) or "Nothing to do."}, status=status.HTTP_200_OK)
