"""One place that decides which queue every task goes to."""

from django.conf import settings

DELIVER_TASK = "notifications.deliver"


def delivery_queue(channel: str) -> str:
    return f"{settings.DELIVERY_QUEUE_PREFIX}{channel}"


def route_task(name, args, kwargs, options, task=None, **kw):
    if name == DELIVER_TASK:
        channel = kwargs.get("channel") if kwargs else None
        if channel is None and args:
            channel = args[0]
        return {"queue": delivery_queue(channel)}
    queue = settings.TASK_QUEUE_ROUTES.get(name)
    return {"queue": queue} if queue else None
