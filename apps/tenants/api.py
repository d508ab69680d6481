from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.channels.registry import channel_types, get_backend
from apps.channels.testsend import describe, send_test
from apps.common.errors import Conflict
from apps.common.serializers import StrictFieldsMixin, StrictSerializer
from apps.common.views import TenantScopedModelViewSet, TenantScopedViewSet

from . import events
from .models import ApiKey, ChannelIntegration, Tenant


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
        with transaction.atomic():
            key, clear = ApiKey.issue(request.tenant, payload.validated_data["name"])
            events.emit(request.tenant, "api_key.created", "api_key", key.prefix, name=key.name)
        body = {"id": key.public_id, "name": key.name, "prefix": key.prefix, "key": clear}
        return Response(CreatedApiKeySerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, id=None):
        key = self.get_object()
        with transaction.atomic():
            revoked = ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(
                revoked_at=timezone.now()
            )
            if revoked:
                events.emit(request.tenant, "api_key.revoked", "api_key", key.prefix)
        return Response(status=status.HTTP_204_NO_CONTENT)


def integration_channels() -> list[str]:
    return [c for c in channel_types() if get_backend(c).credential_serializer is not None]


class IntegrationSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    channel = serializers.ChoiceField(choices=[])
    credentials = serializers.DictField(
        write_only=True, help_text="The provider's credentials; never shown back in full."
    )
    credential_hints = serializers.JSONField(source="hints", read_only=True)

    class Meta:
        model = ChannelIntegration
        fields = (
            "id",
            "channel",
            "name",
            "enabled",
            "test_address",
            "credentials",
            "credential_hints",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = integration_channels()
        if self.instance is not None:
            self.fields["channel"].read_only = True
            self.fields["credentials"].required = False

    def validate(self, attrs):
        channel = attrs.get("channel") or self.instance.channel
        if "credentials" in attrs:
            checker = get_backend(channel).credential_serializer(data=attrs["credentials"])
            if not checker.is_valid():
                raise serializers.ValidationError({"credentials": checker.errors})
            unknown = sorted(set(attrs["credentials"]) - set(checker.fields))
            if unknown:
                raise serializers.ValidationError(
                    {"credentials": {k: ["Unknown field."] for k in unknown}}
                )
            attrs["credentials"] = dict(checker.validated_data)
        return attrs

    def save(self, **kwargs):
        credentials = self.validated_data.pop("credentials", None)
        instance = self.instance or ChannelIntegration(**kwargs)
        for name, value in self.validated_data.items():
            setattr(instance, name, value)
        if credentials is not None:
            instance.set_credentials(credentials, get_backend(instance.channel).secret_fields)
        try:
            with transaction.atomic():
                instance.save()
                events.emit(
                    instance.tenant,
                    "integration.saved",
                    "integration",
                    str(instance.public_id),
                    channel=instance.channel,
                    credentials_changed=credentials is not None,
                )
        except IntegrityError:
            raise Conflict(f"The tenant already has a {instance.channel} integration.") from None
        self.instance = instance
        return instance


class TestSendSerializer(StrictSerializer):
    to = serializers.CharField(
        required=False, max_length=4096, help_text="Defaults to the integration's test_address."
    )


class TestSendResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    provider_message_id = serializers.CharField(required=False)
    error = serializers.CharField(required=False)
    permanent = serializers.BooleanField(required=False)


class IntegrationViewSet(TenantScopedModelViewSet):
    """A tenant's own provider credentials (SMS, Slack, push), encrypted at rest."""

    serializer_class = IntegrationSerializer

    def tenant_queryset(self, tenant):
        return ChannelIntegration.objects.filter(tenant=tenant)

    def perform_destroy(self, instance):
        with transaction.atomic():
            events.emit(
                instance.tenant, "integration.deleted", "integration", str(instance.public_id)
            )
            instance.delete()

    @extend_schema(request=TestSendSerializer, responses=TestSendResultSerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, id=None):
        integration = self.get_object()
        payload = TestSendSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        address = payload.validated_data.get("to") or integration.test_address
        outcome = send_test(
            integration.channel, integration.credentials(), address, request.tenant.name
        )
        return Response(TestSendResultSerializer(describe(outcome)).data)
