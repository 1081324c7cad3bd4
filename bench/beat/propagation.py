"""Change propagation: edit a schedule so it is due now, time until a real beat dispatches it.

A real ``celery beat`` process runs the scheduler under test against the bench
stores. Each edit goes through the system's own write path; the clock starts
when the edit has returned (committed) and stops when the beat's message for
that schedule is in the broker queue (read with BRPOP, nothing else consumes
it). Each edit waits a random 0-5 s first, so edits land at random points of
the beat's sleep (as a user's would), not just after its last wake-up. Edits
start once the beat has sent its first message (a housekeeping
pulse, due at start), so django-celery-beat's initial load is not counted as
propagation; that wait is reported as ``ready``.
"""
from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.beat.stores import QUEUE_KEYS, queue_purge
from bench.common import redis_bench

Matcher = Callable[[dict, str], bool]
MAX_PHASE = 5.0  # seconds: the longest beat sleep of all three schedulers


@dataclass(frozen=True)
class Propagation:
    seconds: list[float]  # one per edit dispatched within the per-edit timeout
    missed: int  # edits not dispatched within the per-edit timeout
    ready_seconds: float | None  # beat start to its first message (None: none came)


def message_task(message: dict) -> str:
    return message.get("headers", {}).get("task", "")


def message_args(message: dict) -> list:
    body = message.get("body", "")
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body).decode()
    return json.loads(body)[0]


def _await(name: str, matches: Matcher, *, timeout: float) -> float | None:
    """Seconds until the message for ``name`` arrives, or None after ``timeout``."""
    client, started = redis_bench(), time.perf_counter()
    while (left := timeout - (time.perf_counter() - started)) > 0:
        popped = client.brpop(QUEUE_KEYS, timeout=max(0.01, min(1.0, left)))
        if popped and matches(json.loads(popped[1]), name):
            return time.perf_counter() - started
    return None


def beat_ready(*, started: float, timeout: float) -> float | None:
    """Seconds from ``started`` (perf_counter) to the beat's first message, if one comes."""
    client = redis_bench()
    while (left := timeout - (time.perf_counter() - started)) > 0:
        if client.brpop(QUEUE_KEYS, timeout=max(0.01, min(1.0, left))):
            return time.perf_counter() - started
    return None


def propagation_measure(edit: Callable[[str], None], matches: Matcher, names: list[str], *,
                        started: float, ready_timeout: float, timeout: float, budget: float) -> Propagation:
    """Edit each name in turn (no new edit after ``budget`` seconds)."""
    ready = beat_ready(started=started, timeout=ready_timeout)
    seconds, missed, deadline = [], 0, time.monotonic() + budget
    phase = random.Random(len(names))
    for name in names:
        if time.monotonic() > deadline:
            break
        queue_purge()
        time.sleep(phase.uniform(0, MAX_PHASE))
        edit(name)
        took = _await(name, matches, timeout=timeout)
        if took is None:
            missed += 1
        else:
            seconds.append(took)
    queue_purge()
    return Propagation(seconds, missed, ready)
