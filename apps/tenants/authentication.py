from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from apps.common.actor import actor_var

from .models import ApiKey

LAST_USED_RESOLUTION = timedelta(minutes=1)


class TenantPrincipal:
    """What `request.user` is for API calls: the key, and through it the tenant."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.tenant = api_key.tenant

    def __str__(self) -> str:
        return f"key:{self.api_key.prefix}"


def parse_key(clear: str) -> str | None:
    parts = clear.split("_", 2)
    if len(parts) != 3 or parts[0] != "ntf" or not parts[1] or not parts[2]:
        return None
    return parts[1]


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, clear = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not clear.strip():
            raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <api key>'.")
        clear = clear.strip()
        prefix = parse_key(clear)
        key = None
        if prefix:
            key = ApiKey.objects.active().select_related("tenant").filter(prefix=prefix).first()
        if key is None or not key.matches(clear):
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        self._touch(key)
        request.tenant = key.tenant
        principal = TenantPrincipal(key)
        actor_var.set(f"key:{key.prefix}")
        return principal, key

    def authenticate_header(self, request):
        return self.keyword

    @staticmethod
    def _touch(key: ApiKey) -> None:
        # One write a minute per key at most, not one per request.
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
