from rest_framework import mixins, viewsets


class TenantScopedViewSet(viewsets.GenericViewSet):
    """Base for every tenant resource: the queryset always starts from the caller's tenant,
    so another tenant's object is simply not found (404), never forbidden (403)."""

    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_converter = "uuid"

    def tenant_queryset(self, tenant):
        raise NotImplementedError  # each resource names its own queryset

    def get_queryset(self):
        return self.tenant_queryset(self.request.tenant)


class TenantScopedModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """Create, read, update, delete a tenant's objects; a new object is the caller's."""

    def perform_create(self, serializer):
        serializer.save(tenant=self.request.tenant)
