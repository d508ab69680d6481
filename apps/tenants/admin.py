from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from apps.channels import breaker
from apps.channels.registry import get_backend
from apps.channels.testsend import describe, send_test

from . import events
from .api import integration_channels
from .models import ApiKey, ChannelIntegration, Contact, Tenant


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # keys are issued by the action, so the clear text can be shown once


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "default_locale", "timezone", "is_active", "created_at")
    list_filter = ("is_active", "default_locale")
    search_fields = ("slug", "name")
    readonly_fields = ("created_at", "circuit_breakers")
    inlines = (ApiKeyInline,)
    actions = ("issue_api_key", "reset_circuit_breakers")

    @admin.display(description="Circuit breakers (shared by all workers)")
    def circuit_breakers(self, tenant):
        rows = [s for s in breaker.states() if s["tenant_id"] == tenant.pk]
        if not rows:
            return "all closed"
        return format_html_join(
            mark_safe("<br>"),
            "{}: {} ({} failures in a row)",
            ((s["provider"], s["state"], s["failures"]) for s in rows),
        )

    @admin.action(description="Reset circuit breakers (close them now)")
    def reset_circuit_breakers(self, request, queryset):
        for tenant in queryset:
            for state in breaker.states():
                if state["tenant_id"] == tenant.pk:
                    breaker.reset(tenant.pk, state["provider"])
                    events.emit(tenant, "admin.circuit_reset", "circuit", state["provider"])
        self.message_user(request, "Circuit breakers reset.")

    @admin.action(description="Issue a new API key (shown once)")
    def issue_api_key(self, request, queryset):
        for tenant in queryset:
            _key, clear = ApiKey.issue(tenant, f"admin:{request.user}")
            events.emit(tenant, "api_key.created", "api_key", _key.prefix, name=_key.name)
            self.message_user(request, f"{tenant.slug}: {clear}", messages.WARNING)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "tenant", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("prefix", "name", "tenant__slug")
    readonly_fields = ("public_id", "prefix", "key_hash", "created_at", "last_used_at")
    actions = ("revoke_keys",)

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        revoking = list(queryset.filter(revoked_at__isnull=True).select_related("tenant"))
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        for key in revoking:
            events.emit(key.tenant, "api_key.revoked", "api_key", key.prefix)
        self.message_user(request, f"Revoked {count} key(s).")


class IntegrationForm(forms.ModelForm):
    channel = forms.ChoiceField(choices=())
    new_credentials = forms.JSONField(
        required=False,
        help_text="The provider's credentials as JSON; leave empty to keep the stored ones. "
        "They are encrypted and never shown again.",
    )

    class Meta:
        model = ChannelIntegration
        fields = ("tenant", "channel", "name", "enabled", "test_address")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [(c, c) for c in integration_channels()]

    def clean(self):
        cleaned = super().clean()
        values = cleaned.get("new_credentials")
        if values is None and not self.instance.encrypted_credentials:
            raise forms.ValidationError("Credentials are required for a new integration.")
        if values is not None and cleaned.get("channel"):
            checker = get_backend(cleaned["channel"]).credential_serializer(data=values)
            if not checker.is_valid():
                raise forms.ValidationError(f"Invalid credentials: {checker.errors}")
            cleaned["new_credentials"] = dict(checker.validated_data)
        return cleaned

    def save(self, commit=True):
        instance = super().save(commit=False)
        values = self.cleaned_data.get("new_credentials")
        if values is not None:
            instance.set_credentials(values, get_backend(instance.channel).secret_fields)
        if commit:
            instance.save()
        return instance


@admin.register(ChannelIntegration)
class ChannelIntegrationAdmin(admin.ModelAdmin):
    form = IntegrationForm
    list_display = ("tenant", "channel", "name", "enabled", "hints", "updated_at")
    list_filter = ("channel", "enabled")
    search_fields = ("tenant__slug", "name")
    readonly_fields = ("hints", "created_at", "updated_at")
    actions = ("send_test_message",)

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            changed = form.cleaned_data.get("new_credentials") is not None
            events.emit(
                obj.tenant,
                "integration.saved",
                "integration",
                str(obj.public_id),
                channel=obj.channel,
                credentials_changed=changed,
            )

    def delete_model(self, request, obj):
        with transaction.atomic():
            events.emit(obj.tenant, "integration.deleted", "integration", str(obj.public_id))
            super().delete_model(request, obj)

    @admin.action(description="Send a test message to each integration's test address")
    def send_test_message(self, request, queryset):
        for integration in queryset.select_related("tenant"):
            result = describe(
                send_test(
                    integration.channel,
                    integration.credentials(),
                    integration.test_address,
                    integration.tenant.name,
                )
            )
            level = messages.SUCCESS if result["ok"] else messages.ERROR
            detail = result.get("provider_message_id") or result.get("error")
            self.message_user(request, f"{integration}: {detail}", level)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("user_id", "name", "role", "tenant", "email", "phone")
    list_filter = ("tenant", "role")
    search_fields = ("user_id", "name", "email", "tenant__slug")
