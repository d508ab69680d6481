from apps.common.actor import actor_var
from apps.common.middleware import request_id_var

from .trail import Context, context_var


class AuditContextMiddleware:
    """Who and where for the audit trail: request id, client address, user agent, and
    the admin user (API-key authentication names the key instead)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        actor = f"admin:{user.get_username()}" if user and user.is_authenticated else "anonymous"
        token = context_var.set(
            Context(
                request_id=request_id_var.get(),
                actor=actor,
                ip=request.META.get("REMOTE_ADDR", ""),
                user_agent=request.headers.get("User-Agent", "")[:300],
            )
        )
        actor_token = actor_var.set("")
        try:
            return self.get_response(request)
        finally:
            context_var.reset(token)
            actor_var.reset(actor_token)
