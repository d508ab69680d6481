"""`GET /api/v1/audit/`: the tenant's own entries, newest first, filterable."""

from rest_framework import mixins, serializers

from apps.common.pagination import NewestFirstCursorPagination
from apps.common.serializers import StrictSerializer
from apps.common.views import TenantScopedViewSet

from .models import AuditEntry


class AuditFilters(StrictSerializer):
    operation = serializers.CharField(required=False, max_length=64)
    resource_type = serializers.CharField(required=False, max_length=64)
    resource_id = serializers.CharField(required=False, max_length=200)
    actor = serializers.CharField(required=False, max_length=200)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False)


class AuditEntrySerializer(serializers.ModelSerializer):
    timestamp = serializers.DateTimeField(source="created_at")
    resource = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = (
            "seq",
            "timestamp",
            "operation",
            "actor",
            "resource",
            "result",
            "request_id",
            "duration_ms",
            "ip",
            "user_agent",
            "metadata",
        )

    def get_resource(self, entry) -> dict:
        return {"type": entry.resource_type, "id": entry.resource_id}


class SeqCursorPagination(NewestFirstCursorPagination):
    ordering = ("-created_at", "-seq")


class AuditViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    serializer_class = AuditEntrySerializer
    pagination_class = SeqCursorPagination

    def tenant_queryset(self, tenant):
        return AuditEntry.objects.filter(tenant=tenant)

    def filter_queryset(self, queryset):
        given = AuditFilters(data=self.request.query_params.dict())
        given.is_valid(raise_exception=True)
        values = dict(given.validated_data)
        values.pop("cursor", None)
        lookups = {
            "created_after": "created_at__gte",
            "created_before": "created_at__lt",
        }
        return queryset.filter(**{lookups.get(k, k): v for k, v in values.items()})
