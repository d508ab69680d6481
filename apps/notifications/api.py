import logging

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.channels.registry import channel_types
from apps.common.errors import Conflict
from apps.common.logging import notification_id_var
from apps.common.serializers import StrictSerializer
from apps.common.views import TenantScopedViewSet

from . import services
from .models import Delivery, Notification, NotificationStatus
from .serializers import (
    AcceptedSerializer,
    BulkAcceptedSerializer,
    BulkInSerializer,
    NotificationInSerializer,
    NotificationListSerializer,
    NotificationOutSerializer,
)

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Repeat a request safely: same key and body answer the first response.",
)


logger = logging.getLogger("apps.notifications.api")


class ListFilters(StrictSerializer):
    status = serializers.ChoiceField(choices=NotificationStatus.choices, required=False)
    channel = serializers.ChoiceField(choices=[], required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = channel_types()


class NotificationViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, TenantScopedViewSet):
    max_body_bytes = settings.MAX_NOTIFICATION_BODY_BYTES

    def get_serializer_class(self):
        return NotificationListSerializer if self.action == "list" else NotificationOutSerializer

    def tenant_queryset(self, tenant):
        queryset = Notification.objects.filter(tenant=tenant)
        if self.action in ("retrieve", "cancel"):
            queryset = queryset.prefetch_related(
                Prefetch(
                    "deliveries", Delivery.objects.select_related("fallback_for").order_by("id")
                )
            )
        return queryset

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = ListFilters(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        values = filters.validated_data
        if "status" in values:
            queryset = queryset.filter(status=values["status"])
        if "channel" in values:
            queryset = queryset.filter(
                Exists(
                    Delivery.objects.filter(notification=OuterRef("pk"), channel=values["channel"])
                )
            )
        if "created_after" in values:
            queryset = queryset.filter(created_at__gte=values["created_after"])
        if "created_before" in values:
            queryset = queryset.filter(created_at__lt=values["created_before"])
        return queryset

    def _idempotent(self, request, produce):
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= 255:
            raise serializers.ValidationError({"Idempotency-Key": ["Must be 1 to 255 characters."]})
        result = services.idempotent(request.tenant, key, request.data, produce)
        if result is None:
            raise Conflict("This Idempotency-Key was used with a different request body.")
        status_code, body = result
        return Response(body, status=status_code)

    @extend_schema(
        request=NotificationInSerializer,
        responses={202: AcceptedSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    )
    def create(self, request):
        payload = NotificationInSerializer(data=request.data, context={"tenant": request.tenant})
        payload.is_valid(raise_exception=True)

        def produce():
            [(notification, count)] = services.accept(request.tenant, [payload.validated_data])
            notification_id_var.set(str(notification.public_id))
            logger.info("accepted with %d deliveries", count)
            body = {"id": str(notification.public_id), "status": "accepted", "deliveries": count}
            return status.HTTP_202_ACCEPTED, body

        return self._idempotent(request, produce)

    @extend_schema(
        request=BulkInSerializer,
        responses={202: BulkAcceptedSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    )
    @action(detail=False, methods=["post"], max_body_bytes=settings.MAX_BULK_BODY_BYTES)
    def bulk(self, request):
        payload = BulkInSerializer(data=request.data, context={"tenant": request.tenant})
        payload.is_valid(raise_exception=True)

        def produce():
            accepted = services.accept(request.tenant, payload.validated_data["notifications"])
            return status.HTTP_202_ACCEPTED, {"ids": [str(n.public_id) for n, _ in accepted]}

        return self._idempotent(request, produce)

    @extend_schema(request=None, responses={200: NotificationOutSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, id=None):
        notification = self.get_object()
        services.cancel(notification)
        notification = self.tenant_queryset(request.tenant).get(pk=notification.pk)
        return Response(NotificationOutSerializer(notification).data)
