"""`/api/v1/templates/` (addressed by key) and `/api/v1/templates/<key>/preview/`."""

from django.db import IntegrityError
from django.utils.html import linebreaks
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.channels.registry import channel_types
from apps.common.errors import Conflict
from apps.common.serializers import StrictSerializer
from apps.common.validators import validate_locale
from apps.common.views import TenantScopedViewSet

from .filters import LOCALE_KEY, TIMEZONE_KEY
from .layout import branded_html
from .models import NotificationTemplate
from .renderer import RenderError, render, syntax_error
from .store import choose_variant, locale_chain, publish, variants_of
from .text import html_to_text

MAX_VARIANTS = 50
SOURCE_FIELDS = ("subject", "body", "html_body")


class VariantSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=[], allow_null=True, required=False, default=None)
    locale = serializers.CharField(max_length=16, validators=[validate_locale])
    subject = serializers.CharField(max_length=1000, allow_blank=True, required=False, default="")
    body = serializers.CharField(max_length=200_000, allow_blank=True, required=False, default="")
    html_body = serializers.CharField(
        max_length=500_000, allow_blank=True, required=False, default=""
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = channel_types()

    def validate(self, attrs):
        errors = {}
        for name in SOURCE_FIELDS:
            error = syntax_error(attrs.get(name, ""))
            if error:
                errors[name] = [f"Template syntax error at {error}"]
        if errors:
            raise serializers.ValidationError(errors)
        if not (attrs.get("body") or attrs.get("html_body")):
            raise serializers.ValidationError({"body": ["Give a body or an html_body."]})
        return attrs


class TemplateSerializer(StrictSerializer):
    key = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200, allow_blank=True, required=False)
    variants = VariantSerializer(many=True, allow_empty=False, max_length=MAX_VARIANTS)
    version = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def validate_variants(self, variants):
        seen = set()
        for index, variant in enumerate(variants):
            pair = (variant["channel"], variant["locale"].lower())
            if pair in seen:
                raise serializers.ValidationError(
                    {str(index): {"locale": ["Two variants for this channel and locale."]}}
                )
            seen.add(pair)
        return variants


class PreviewSerializer(StrictSerializer):
    context = serializers.DictField(required=False, default=dict)
    channel = serializers.ChoiceField(choices=[])
    locale = serializers.CharField(max_length=16, required=False, validators=[validate_locale])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = channel_types()


class PreviewOutSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    channel = serializers.CharField()
    locale = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField()
    html_body = serializers.CharField()


def template_body(template: NotificationTemplate) -> dict:
    return {
        "key": template.key,
        "name": template.name,
        "variants": list(variants_of(template.tenant_id, template.key, template.current_version)),
        "version": template.current_version,
        "created_at": template.created_at,
        "updated_at": template.updated_at,
    }


def preview(template, tenant, channel: str, locale: str | None, context: dict) -> dict:
    """What a notification with this template would send, in the layout it would use."""
    variants = variants_of(tenant.pk, template.key, template.current_version)
    recipient = context.get("recipient") if isinstance(context.get("recipient"), dict) else {}
    locales = locale_chain(locale, recipient.get("locale"), tenant.default_locale)
    variant = choose_variant(variants, channel, locales)
    if variant is None:
        raise serializers.ValidationError(
            {"channel": [f"No variant for {channel} in {', '.join(locales)}."]}
        )
    chosen_locale = variant.get("locale") or locales[0]
    full = {
        **context,
        LOCALE_KEY: chosen_locale,
        TIMEZONE_KEY: recipient.get("timezone") or tenant.timezone,
    }
    try:
        subject = render(variant.get("subject", ""), full)
        body = render(variant.get("body", ""), full)
        html_body = ""
        if channel == "email":
            inner = (
                render(variant["html_body"], full, html=True)
                if variant.get("html_body")
                else linebreaks(render(variant.get("body", ""), full, html=True))
            )
            tenant_view = {"name": tenant.name, "branding": tenant.settings.get("branding", {})}
            html_body = branded_html(subject, inner, tenant_view)
            body = body or html_to_text(inner)
    except RenderError as exc:
        raise serializers.ValidationError({"context": [str(exc)]}) from None
    return {
        "version": template.current_version,
        "channel": channel,
        "locale": chosen_locale,
        "subject": subject,
        "body": body,
        "html_body": html_body,
    }


class TemplateViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet
):
    """Templates by key; every edit publishes a new version."""

    serializer_class = TemplateSerializer
    lookup_field = "key"
    lookup_url_kwarg = "key"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    lookup_value_converter = "slug"

    def tenant_queryset(self, tenant):
        return NotificationTemplate.objects.filter(tenant=tenant)

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([template_body(t) for t in page])

    def retrieve(self, request, key=None):
        return Response(TemplateSerializer(template_body(self.get_object())).data)

    def create(self, request):
        payload = TemplateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if self.get_queryset().filter(key=data["key"]).exists():
            raise Conflict(f"A template with key {data['key']!r} exists; PUT to publish a version.")
        template = self._publish(data["key"], data)
        body = TemplateSerializer(template_body(template)).data
        return Response(body, status=status.HTTP_201_CREATED)

    def update(self, request, key=None):
        template = self.get_object()
        payload = TemplateSerializer(data={"key": template.key, **request.data})
        payload.is_valid(raise_exception=True)
        if payload.validated_data["key"] != template.key:
            raise serializers.ValidationError({"key": ["The key of a template cannot change."]})
        template = self._publish(template.key, payload.validated_data)
        return Response(TemplateSerializer(template_body(template)).data)

    def _publish(self, key: str, data: dict):
        try:
            template, _version = publish(
                self.request.tenant, key, [dict(v) for v in data["variants"]], data.get("name")
            )
        except IntegrityError:
            raise Conflict("The template changed at the same time; try again.") from None
        return template

    @extend_schema(request=PreviewSerializer, responses=PreviewOutSerializer)
    @action(detail=True, methods=["post"])
    def preview(self, request, key=None):
        template = self.get_object()
        payload = PreviewSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        body = preview(
            template, request.tenant, data["channel"], data.get("locale"), data["context"]
        )
        return Response(PreviewOutSerializer(body).data)
