"""Settings, read only from environment variables (see docs/configuration.md)."""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from .env import env_bool, env_float, env_int, env_list, env_map, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and not env_bool("ALLOW_INSECURE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG=true")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "apps.common",
    "apps.tenants",
    "apps.channels",
    "apps.templating",
    "apps.notifications",
    "apps.escalation",
    "apps.audit",
]

MIDDLEWARE = [
    "apps.common.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "notifications_project.urls"
WSGI_APPLICATION = "notifications_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL",
    {"postgres", "postgresql", "pgsql", "sqlite"},
    f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the web process read while a worker writes; a generous timeout absorbs
    # the single-writer lock of the embedded demo set-up.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
TEST_DATABASE_NAME = env_str("TEST_DATABASE_NAME")
if TEST_DATABASE_NAME:
    DATABASES["default"]["TEST"] = {"NAME": TEST_DATABASE_NAME}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache / Redis --------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", {"redis", "rediss", "unix"})
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ---------------------------------------------------------------------------
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL",
    {"redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem", "memory"},
    "filesystem://",
)
if CELERY_BROKER_URL.startswith("filesystem"):
    for folder in ("out", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Above the longest countdown we schedule; the sweeper resumes anything stuck.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_PREFETCH_MULTIPLIER", 4, minimum=1)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_WORKER_SEND_TASK_EVENTS", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

DELIVERY_QUEUE_PREFIX = "deliver."
CELERY_TASK_QUEUES = [
    Queue("pipeline"),
    Queue("maintenance"),
    Queue("deliver.email"),
    Queue("deliver.sms"),
    Queue("deliver.slack"),
    Queue("deliver.teams"),
    Queue("deliver.push"),
    Queue("deliver.webhook"),
    Queue("escalation"),
]
CELERY_TASK_DEFAULT_QUEUE = "pipeline"
CELERY_TASK_ROUTES = ("apps.common.routing.route_task",)
# Static routes; delivery tasks are routed by channel in apps.common.routing.
TASK_QUEUE_ROUTES = {
    "notifications.preprocess": "pipeline",
    "notifications.render": "pipeline",
    "notifications.dispatch": "pipeline",
    "notifications.sweep": "maintenance",
    "notifications.release_scheduled": "maintenance",
    "notifications.purge_idempotency_keys": "maintenance",
    "escalation.fire_level": "escalation",
    "escalation.audit": "escalation",
    "celery.ping": "maintenance",
    "celery.chain": "pipeline",
    "celery.group": "pipeline",
    "celery.chord": "pipeline",
    "celery.chord_unlock": "pipeline",
    "celery.starmap": "pipeline",
    "celery.chunks": "pipeline",
    "celery.map": "pipeline",
    "celery.accumulate": "pipeline",
    "celery.backend_cleanup": "maintenance",
}
SWEEP_INTERVAL_SECONDS = env_float("SWEEP_INTERVAL_SECONDS", 15.0, minimum=1.0)
# The escalation auditor: how often it looks, and how late a level must be before it
# fires it itself (its task should have run by then).
ESCALATION_AUDIT_SECONDS = env_float("ESCALATION_AUDIT_SECONDS", 2.0, minimum=0.5)
ESCALATION_AUDIT_GRACE_SECONDS = env_float("ESCALATION_AUDIT_GRACE_SECONDS", 2.0, minimum=0.0)
CELERY_BEAT_SCHEDULE = {
    "audit-escalations": {
        "task": "escalation.audit",
        "schedule": ESCALATION_AUDIT_SECONDS,
    },
    "sweep-stuck-deliveries": {
        "task": "notifications.sweep",
        "schedule": SWEEP_INTERVAL_SECONDS,
    },
    "release-scheduled-notifications": {
        "task": "notifications.release_scheduled",
        "schedule": 5.0,
    },
    "purge-idempotency-keys": {
        "task": "notifications.purge_idempotency_keys",
        "schedule": 3600.0,
    },
}

# --- Delivery behaviour ---------------------------------------------------------------
PIPELINE_BATCH_SIZE = env_int("PIPELINE_BATCH_SIZE", 500, minimum=1)
DELIVERY_BATCH_SIZE = env_int("DELIVERY_BATCH_SIZE", 200, minimum=1)
# Sends are recorded every this many completions, or once the oldest unrecorded one
# has waited this long: together they bound what a crash can repeat.
DELIVERY_RECORD_GROUP = env_int("DELIVERY_RECORD_GROUP", 50, minimum=1)
DELIVERY_RECORD_SECONDS = env_float("DELIVERY_RECORD_SECONDS", 0.25, minimum=0.0)
DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 5, minimum=1)
RETRY_BACKOFF_SECONDS = env_float("RETRY_BACKOFF_SECONDS", 5.0)
RETRY_BACKOFF_MAX_SECONDS = env_float("RETRY_BACKOFF_MAX_SECONDS", 600.0)
# Per-channel overrides, e.g. CHANNEL_MAX_ATTEMPTS=sms=3,push=8.
CHANNEL_MAX_ATTEMPTS = env_map("CHANNEL_MAX_ATTEMPTS")
CHANNEL_BACKOFF_SECONDS = env_map("CHANNEL_BACKOFF_SECONDS")
SENDING_TIMEOUT_SECONDS = env_float("SENDING_TIMEOUT_SECONDS", 45.0, minimum=1.0)
# A queued delivery whose broker task should have run this long ago is handed over again
# (its message may have been reserved by a worker that died).
LOST_TASK_GRACE_SECONDS = env_float("LOST_TASK_GRACE_SECONDS", 60.0, minimum=1.0)
# A pending delivery this old lost its pipeline run (a crash between commit and enqueue).
STALE_PENDING_SECONDS = env_float("STALE_PENDING_SECONDS", 300.0, minimum=1.0)
DEDUP_WINDOW_SECONDS = env_int("DEDUP_WINDOW_SECONDS", 300, minimum=0)
# Notifications sharing metadata.digest_key to one recipient within this window are sent
# as one digest message when the window ends.
DIGEST_WINDOW_SECONDS = env_int("DIGEST_WINDOW_SECONDS", 300, minimum=1)
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

# --- Channels -------------------------------------------------------------------------
EMAIL_URL = env_url("EMAIL_URL", {"smtp", "smtp+tls", "smtp+ssl"}, "smtp://127.0.0.1:1025")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "notifications@localhost")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
WEBHOOK_ALLOWED_PRIVATE_HOSTS = [h.lower() for h in env_list("WEBHOOK_ALLOWED_PRIVATE_HOSTS")]
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
WEBHOOK_CONCURRENCY = env_int("WEBHOOK_CONCURRENCY", 16, minimum=1)
# Where providers reach this service (Twilio status callbacks, links in messages).
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", {"http", "https"}, "http://localhost:8000").rstrip("/")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER", "")
TWILIO_API_BASE = env_url("TWILIO_API_BASE", {"http", "https"})
SLACK_BOT_TOKEN = env_str("SLACK_BOT_TOKEN", "")
SLACK_API_BASE = env_url("SLACK_API_BASE", {"http", "https"})
# Verifies Slack's interactive callbacks (the acknowledge/resolve buttons).
SLACK_SIGNING_SECRET = env_str("SLACK_SIGNING_SECRET", "")
FCM_CREDENTIALS_FILE = env_str("FCM_CREDENTIALS_FILE", "")
FCM_API_BASE = env_url("FCM_API_BASE", {"http", "https"})
PROVIDER_TIMEOUT_SECONDS = env_float("PROVIDER_TIMEOUT_SECONDS", 10.0, minimum=0.1)
# Price per delivery (per SMS segment), in the tenant's billing currency.
DELIVERY_PRICES = env_map(
    "DELIVERY_PRICES",
    {"email": 0.0001, "sms": 0.0079, "slack": 0.0, "teams": 0.0, "push": 0.0, "webhook": 0.00001},
)

# --- Keeping delivery healthy ---------------------------------------------------------
CIRCUIT_FAILURE_THRESHOLD = env_int("CIRCUIT_FAILURE_THRESHOLD", 5, minimum=1)
CIRCUIT_OPEN_SECONDS = env_float("CIRCUIT_OPEN_SECONDS", 30.0, minimum=0.1)
# Sends per second, per tenant across channels and per (tenant, channel); a tenant's
# settings["rate_limits"] overrides them ({"per_second": 100, "channels": {"sms": 5}}).
RATE_LIMIT_PER_SECOND = env_float("RATE_LIMIT_PER_SECOND", 1000.0, minimum=0.01)
RATE_LIMIT_CHANNEL_PER_SECOND = env_map(
    "RATE_LIMIT_CHANNEL_PER_SECOND",
    {"email": 500.0, "sms": 50.0, "slack": 20.0, "teams": 10.0, "push": 500.0, "webhook": 1000.0},
)
# After a provider answers 429, that (tenant, channel) runs at this fraction of its rate.
RATE_LIMIT_BACKOFF_FACTOR = env_float("RATE_LIMIT_BACKOFF_FACTOR", 0.5, minimum=0.01)
RATE_LIMIT_BACKOFF_SECONDS = env_float("RATE_LIMIT_BACKOFF_SECONDS", 60.0, minimum=1.0)
# Fernet keys (comma-separated, newest first) for tenants' provider credentials; rotating
# means putting a new key first and running `manage.py rotate_credentials`.
CREDENTIAL_KEYS = env_list("CREDENTIAL_KEYS")

# --- API ------------------------------------------------------------------------------
METRICS_TOKEN = env_str("METRICS_TOKEN")
MAX_NOTIFICATION_BODY_BYTES = 1024 * 1024
MAX_BULK_BODY_BYTES = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BULK_BODY_BYTES + 1024
MAX_BULK_ITEMS = 1000

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.tenants.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.tenants.permissions.IsTenantMember"],
    "DEFAULT_PARSER_CLASSES": ["apps.common.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "apps.common.pagination.NewestFirstCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.common.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Notification service API",
    "DESCRIPTION": "Multi-tenant notifications over email, SMS, Slack, Teams, push and webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Misc -----------------------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
FLOWER_URL = env_str("FLOWER_URL", "http://127.0.0.1:5555")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT", "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "apps.common.logging.ContextFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(notification_id)s] "
            "%(message)s"
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(notification_id)s "
            "%(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
