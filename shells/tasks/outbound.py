"""Celery tasks: outbound completion webhooks (one attempt per message, and the sweeper pulse)."""
from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from runs.services.outbound import attempt_limits, outbound_deliver, outbound_sweep

SOFT_LIMIT, HARD_LIMIT = attempt_limits()


# Late acks: a message lost with its worker comes back, and the claim makes a
# copy that arrives while another attempt holds the delivery a no-op.
@shared_task(name="outbound.deliver", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=SOFT_LIMIT, time_limit=HARD_LIMIT)
def deliver(delivery_id: int) -> str | None:
    return outbound_deliver(int(delivery_id), now=timezone.now())


@shared_task(name="outbound.sweep", ignore_result=False, soft_time_limit=60, time_limit=90)
def sweep() -> int:
    return outbound_sweep(now=timezone.now())
