"""Run in a separate OS process (spawned) by the breaker test, as a second Celery worker
would be: nothing Django is imported before django.setup()."""

import time


def try_to_probe(redis_url, tenant_id, provider, start, results):
    import os

    import django

    os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifications_project.settings")
    django.setup()
    from apps.channels import breaker

    while time.time() < start:
        time.sleep(0.001)
    results.put(breaker.acquire(tenant_id, provider).probe)
