"""Hand a stored event to routing: the ``events.route`` task, sent after the row commits.

A broker that cannot be reached is logged, not raised: the event is stored
(``outcome`` stays ``pending``, found by ``event_unrouted_idx``), so the sender
gets its answer and routing picks the event up later.
"""
from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

log = logging.getLogger("tickwise.events")

ROUTE_TASK = "events.route"


def event_route_publish_now(event_id: int) -> None:
    try:
        current_app.send_task(ROUTE_TASK, args=[event_id])
    except (KombuError, RedisError, OSError) as error:
        log.warning("could not send event %s to routing; it stays pending: %s", event_id, error)


def event_route_publish_on_commit(event_id: int) -> None:
    transaction.on_commit(lambda: event_route_publish_now(event_id))
