from celery import shared_task

from . import services


@shared_task(name="escalation.fire_level", acks_late=True)
def fire_level(escalation_id: int, index: int, token: str) -> str:
    return services.fire(escalation_id, index, token)


@shared_task(name="escalation.audit")
def audit() -> dict[str, int]:
    return services.audit()
