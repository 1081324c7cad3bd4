"""Two lanes in one queue: a run someone waits on goes ahead of the routine batches.

kombu's Redis transport keeps one list per message priority step (0, 3, 6,
9) and a worker pops the lowest step first. A run someone or something waits
on now (a resume, a wakeup, a person's or the API's run, a replay) is sent at
``URGENT``; scheduled ticks, catch-ups and event runs at ``ROUTINE``, so a
wakeup due on a minute boundary is not queued behind that minute's thousand
ticks. Within a lane the order stays first in, first out (the outbox sweeper
counts on it, per lane: ``housekeeping.runs_lost``). The urgent triggers are
few by construction (guardrails bound an agent's wakeups and background runs;
people click), so in practice they do not starve the routine lane, though
nothing bounds a client that starts manual runs in a loop; event runs stay
routine because a flood of events is exactly what must not.
"""
from __future__ import annotations

from .models import Trigger

URGENT, ROUTINE = 0, 3  # 0 is the queue's plain list, served first
ROUTINE_TRIGGERS = (Trigger.SCHEDULE, Trigger.CATCHUP, Trigger.EVENT)


def lane_of(trigger: str) -> int:
    return ROUTINE if trigger in ROUTINE_TRIGGERS else URGENT
