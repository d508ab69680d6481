"""Loaded with `-p tests.env_defaults`, before pytest-django reads the settings.

Tests use the real PostgreSQL and Redis. Each xdist worker gets its own Redis database
number, so parallel workers never consume each other's Celery messages.
"""

import os

_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_index = int(_worker[2:]) if _worker[2:].isdigit() else 0
_redis_db = 8 + _index
_redis = os.environ.get("TEST_REDIS_BASE", "redis://127.0.0.1:6379")

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# One name per run (xdist's run id is shared by its workers), so two runs on one server
# never fight over a database; pytest-django appends the worker id.
_run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:10]
os.environ.setdefault("TEST_DATABASE_NAME", f"test_notify_{_run}")
os.environ["CELERY_BROKER_URL"] = f"{_redis}/{_redis_db}"
os.environ["REDIS_URL"] = f"{_redis}/{_redis_db}"
os.environ.setdefault("WEBHOOK_ALLOWED_PRIVATE_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("DATA_DIR", f"/tmp/notify-test-{_worker}")
os.environ.setdefault("LOG_LEVEL", "WARNING")
