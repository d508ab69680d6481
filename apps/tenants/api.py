from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.serializers import StrictSerializer
from apps.common.views import TenantScopedViewSet

from .models import ApiKey, Tenant


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ("slug", "name", "default_locale", "timezone", "webhook_signing_secret")


class TenantView(APIView):
    @extend_schema(responses=TenantSerializer)
    def get(self, request):
        return Response(TenantSerializer(request.tenant).data)


class ApiKeySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    revoked = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ("id", "name", "prefix", "created_at", "last_used_at", "revoked")

    def get_revoked(self, key: ApiKey) -> bool:
        return key.revoked_at is not None


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)


class CreatedApiKeySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    key = serializers.CharField(help_text="Shown once; store it now.")


class ApiKeyViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    serializer_class = ApiKeySerializer

    def tenant_queryset(self, tenant):
        return ApiKey.objects.filter(tenant=tenant)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: CreatedApiKeySerializer})
    def create(self, request):
        payload = ApiKeyCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        key, clear = ApiKey.issue(request.tenant, payload.validated_data["name"])
        body = {"id": key.public_id, "name": key.name, "prefix": key.prefix, "key": clear}
        return Response(CreatedApiKeySerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, id=None):
        key = self.get_object()
        if key.revoked_at is None:
            ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)
