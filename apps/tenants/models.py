import hashlib
import hmac
import secrets
import uuid

from django.db import models
from django.utils import timezone

from .crypto import decrypt, encrypt

KEY_PREFIX_LENGTH = 10


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_hex(32)


class Tenant(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    default_locale = models.CharField(max_length=16, default="en")
    timezone = models.CharField(max_length=64, default="UTC")
    settings = models.JSONField(default=dict, blank=True)
    webhook_signing_secret = models.CharField(max_length=100, default=new_signing_secret)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


def hash_key(secret: str) -> str:
    # Keys are 256-bit random strings, so a fast hash is as strong as a slow one here.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True, tenant__is_active=True)


class ApiKey(models.Model):
    """An API key: `ntf_<prefix>_<secret>`; the prefix finds the row, the hash proves it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @classmethod
    def issue(cls, tenant: Tenant, name: str) -> tuple["ApiKey", str]:
        """Create a key; the clear text is returned once and never stored."""
        prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
        secret = secrets.token_urlsafe(32)
        clear = f"ntf_{prefix}_{secret}"
        key = cls.objects.create(tenant=tenant, name=name, prefix=prefix, key_hash=hash_key(clear))
        return key, clear

    def matches(self, clear: str) -> bool:
        return hmac.compare_digest(self.key_hash, hash_key(clear))

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


def mask(value) -> object:
    """What the API and admin may show of a secret: its last four characters."""
    if isinstance(value, dict):
        return {k: value[k] for k in ("client_email", "project_id") if k in value}
    text = str(value)
    return "••••" + text[-4:] if len(text) > 8 else "••••"


class ChannelIntegration(models.Model):
    """A tenant's own credentials for a provider, overriding the environment's."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="integrations")
    channel = models.CharField(max_length=20)
    name = models.CharField(max_length=100, blank=True, default="")
    encrypted_credentials = models.TextField(editable=False)
    # Masked view of the credentials, made when they are set; never the secrets.
    hints = models.JSONField(default=dict, editable=False)
    enabled = models.BooleanField(default=True)
    # Where "send test message" sends (a phone number, a Slack channel, a push token).
    test_address = models.CharField(max_length=4096, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("channel",)
        constraints = [
            models.UniqueConstraint(fields=["tenant", "channel"], name="integration_tenant_channel")
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}:{self.channel}"

    def set_credentials(self, values: dict, secret_fields: tuple[str, ...]) -> None:
        self.encrypted_credentials = encrypt(values)
        self.hints = {k: (mask(v) if k in secret_fields else v) for k, v in values.items()}

    def credentials(self) -> dict:
        return decrypt(self.encrypted_credentials)


class Contact(models.Model):
    """A person escalations can reach (an on-call member), addressed by user_id."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="contacts")
    user_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200, blank=True, default="")
    role = models.CharField(max_length=100, blank=True, default="", db_index=True)
    email = models.EmailField(max_length=254, blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="")
    slack_id = models.CharField(max_length=100, blank=True, default="")
    push_tokens = models.JSONField(default=list, blank=True)
    timezone = models.CharField(max_length=64, blank=True, default="")
    locale = models.CharField(max_length=16, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("user_id",)
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user_id"], name="contact_tenant_user")
        ]

    def __str__(self) -> str:
        return self.user_id

    def as_recipient(self) -> dict:
        """The contact in the shape of a notification recipient."""
        fields = ("user_id", "email", "phone", "slack_id", "push_tokens", "timezone", "locale")
        recipient = {f: getattr(self, f) for f in fields if getattr(self, f)}
        if self.name or self.metadata:
            recipient["metadata"] = {**({"name": self.name} if self.name else {}), **self.metadata}
        return recipient
