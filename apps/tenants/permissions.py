from rest_framework.permissions import BasePermission


class IsTenantMember(BasePermission):
    """Every API view requires a key that names an active tenant, unless it opts out."""

    def has_permission(self, request, view):
        return getattr(request, "tenant", None) is not None and bool(
            getattr(request.user, "is_authenticated", False)
        )
