"""Housekeeping pulses: the outbox sweeper, the lease reaper, retention.

Each is safe to run on several nodes at once: every write is a conditional
UPDATE, and a run published twice is claimed once.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q

from adapters import adapter_for

from ..models import AgentCall, CallState, ErrorCategory, Run, RunState
from ..publish import publish_runs_now
from .outcome import settle_failure

log = logging.getLogger("tickwise.housekeeping")

# A run younger than this is left to its own on-commit publish.
PUBLISH_GRACE = timedelta(seconds=5)
SWEEP_BATCH = 1000


def runs_sweep_outbox(*, now: datetime) -> int:
    """Publish pending runs that are due and have no live message.

    Two cases: committed but never published (the publisher died after its
    commit), and published long ago yet still pending: the message was
    reserved by a worker that died before claiming it (Redis would redeliver
    it only after the visibility timeout) or lost by the broker. A republished
    run that was merely queued behind a backlog is claimed once; the spare
    message finds nothing to claim.
    """
    stale = now - timedelta(seconds=settings.TICKWISE["REPUBLISH_AFTER"])
    ids = list(
        Run.objects.filter(state=RunState.PENDING)
        .filter(Q(published_at__isnull=True, created_at__lte=now - PUBLISH_GRACE) | Q(published_at__lte=stale))
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("created_at").values_list("id", flat=True)[:SWEEP_BATCH]
    )
    sent = publish_runs_now(ids)
    if sent:
        log.info("outbox: published %s run(s)", sent)
    return sent


def runs_reap_expired_leases(*, now: datetime) -> int:
    """Runs whose worker vanished: retry when safe, else surface them as ``unknown``/``dead``.

    Safe means the agent was never reached for this attempt (no intent row), or
    its adapter deduplicates by idempotency key. Each reaped attempt counts
    toward ``max_attempts``, so a message that crashes every worker it reaches
    (a poison message) ends ``dead`` instead of looping.
    """
    expired = (Run.objects.filter(state=RunState.RUNNING, lease_expires_at__lt=now)
               .select_related("agent", "schedule"))
    reaped = 0
    for run in expired[:SWEEP_BATCH]:
        state = _reap(run, now=now)
        if state is None:
            continue  # the worker finished, or another reaper took it, meanwhile
        reaped += 1
        if state != RunState.PENDING:
            settle_failure(run, now=now)  # a crash that ends the run counts like any failure
    return reaped


def _reap(run: Run, *, now: datetime) -> str | None:
    """The state the run was moved to, or None when its attempt had already moved on."""
    common = {"lease_expires_at": None, "error_category": ErrorCategory.CRASHED,
              "error_message": f"lease held by {run.lease_owner} expired"}
    called = AgentCall.objects.filter(run_id=run.id, attempt=run.attempt, state=CallState.INTENT).exists()
    if called and not adapter_for(run.agent.adapter).idempotent:
        # The agent may have acted; without key-based dedupe a retry could act twice.
        fields = {"state": RunState.UNKNOWN, "finished_at": now}
    elif run.attempt >= run.max_attempts:
        fields = {"state": RunState.DEAD, "finished_at": now}
    else:
        fields = {"state": RunState.PENDING, "published_at": None, "not_before": now,
                  "fencing_token": F("fencing_token") + 1}
    return fields["state"] if Run.objects.fenced(run.id, run.fencing_token).update(**fields, **common) else None


def runs_purge_finished(*, now: datetime, keep_days: int) -> int:
    cutoff = now - timedelta(days=keep_days)
    finished = Run.objects.filter(finished_at__lt=cutoff).exclude(state__in=[RunState.PENDING, RunState.RUNNING])
    deleted, _ = finished.delete()
    return deleted
