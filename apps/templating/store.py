"""Published templates: publishing, finding the variant to use, and the cache.

A version never changes once written, so it is cached under (tenant, key, version) in
process and in Redis (Django's cache) with no invalidation needed; publishing moves the
"current version" pointer, and that pointer's cache entry is what publishing deletes.
Every key carries the tenant's id: one tenant's template is never served to another.
"""

from functools import lru_cache

from django.core.cache import cache
from django.db import transaction

from apps.audit.trail import record

from .models import NotificationTemplate, TemplateVersion

CACHE_SECONDS = 24 * 3600
DEFAULT_LOCALE = "en"


class UnknownTemplate(LookupError):
    pass


def _current_key(tenant_id: int, key: str) -> str:
    return f"tpl:current:{tenant_id}:{key}"


def _version_key(tenant_id: int, key: str, version: int) -> str:
    return f"tpl:v:{tenant_id}:{key}:{version}"


@transaction.atomic
def publish(tenant, key: str, variants: list[dict], name: str | None = None):
    """Create the template or add a new version; returns (template, version)."""
    template, created = NotificationTemplate.objects.select_for_update().get_or_create(
        tenant=tenant, key=key, defaults={"name": name or ""}
    )
    if not created:
        template.current_version += 1
        if name is not None:
            template.name = name
        template.save(update_fields=["current_version", "name", "updated_at"])
    version = TemplateVersion.objects.create(
        template=template, version=template.current_version, variants=variants
    )
    record(
        tenant,
        "template.published",
        "template",
        key,
        metadata={"version": version.version, "variants": len(variants)},
    )
    # Now, and again after commit: a reader between the two may have cached the old one.
    cache.delete(_current_key(tenant.pk, key))
    transaction.on_commit(lambda: cache.delete(_current_key(tenant.pk, key)))
    return template, version


def current_version(tenant_id: int, key: str) -> int:
    cached = cache.get(_current_key(tenant_id, key))
    if cached is not None:
        return cached
    number = (
        NotificationTemplate.objects.filter(tenant_id=tenant_id, key=key)
        .values_list("current_version", flat=True)
        .first()
    )
    if number is None:
        raise UnknownTemplate(key)
    cache.set(_current_key(tenant_id, key), number, CACHE_SECONDS)
    return number


def variants_of(tenant_id: int, key: str, version: int) -> tuple[dict, ...]:
    return _variants(tenant_id, key, version)


@lru_cache(maxsize=512)
def _variants(tenant_id: int, key: str, version: int) -> tuple[dict, ...]:
    cache_key = _version_key(tenant_id, key, version)
    variants = cache.get(cache_key)
    if variants is None:
        variants = (
            TemplateVersion.objects.filter(
                template__tenant_id=tenant_id, template__key=key, version=version
            )
            .values_list("variants", flat=True)
            .first()
        )
        if variants is None:
            raise UnknownTemplate(f"{key} v{version}")
        cache.set(cache_key, variants, CACHE_SECONDS)
    return tuple(variants)


def locale_chain(*candidates: str | None) -> list[str]:
    """recipient → notification → tenant default → en, each also without its region."""
    chain: list[str] = []
    for candidate in (*candidates, DEFAULT_LOCALE):
        if not candidate:
            continue
        for code in (candidate, candidate.replace("_", "-").split("-")[0]):
            if code.lower() not in [c.lower() for c in chain]:
                chain.append(code)
    return chain


def choose_variant(variants, channel: str, locales: list[str]) -> dict | None:
    """The first variant in locale order; within a locale, the channel's own first."""
    for locale in locales:
        for wanted in (channel, None):
            for variant in variants:
                same_locale = (variant.get("locale") or "").lower() == locale.lower()
                if same_locale and variant.get("channel") == wanted:
                    return variant
    return None
