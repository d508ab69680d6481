"""Who is acting in this request or task, for the audit trail: set by API-key
authentication (`key:<prefix>`); the audit middleware names admin users and resets it."""

import contextvars

actor_var: contextvars.ContextVar[str] = contextvars.ContextVar("actor", default="")
