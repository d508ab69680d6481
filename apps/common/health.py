import hmac

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse

from notifications_project.celery import app as celery_app

from .metrics_export import render_metrics


def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database: {exc.__class__.__name__}"
    return None


def _broker_ok() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"broker: {exc.__class__.__name__}"
    return None


def readyz(request):
    problems = [p for p in (_database_ok(), _broker_ok()) if p]
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ok"})


def metrics(request):
    if settings.METRICS_TOKEN:
        supplied = request.headers.get("Authorization", "")
        expected = f"Bearer {settings.METRICS_TOKEN}"
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            return HttpResponse(
                "metrics need the METRICS_TOKEN bearer token\n",
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    return render_metrics()
