"""Housekeeping pulses: the outbox sweeper, the lease reaper, retention.

Each is safe to run on several nodes at once: every write is a conditional
UPDATE, and a run published twice is claimed once.

One bad row never stops a pass. Each row's work runs in its own savepoint;
a row that cannot be settled normally (its agent's adapter kind does not
exist, its schedule cannot plan, …) is settled ``failed`` with category
``config`` and the reason, logged once (the row is terminal afterwards, so
the next pass does not meet it again), and the pass goes on. Only a lost
database connection ends a pass: then no row could be settled.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now

from adapters import adapter_for
from alerts.models import AlertKind
from alerts.services import alert_raise, alert_resolve_key
from core import metrics

from .. import sql
from ..models import AgentCall, CallState, ErrorCategory, Run, RunState
from ..publish import publish_runs_now, queued_by_lane
from .ended import one_line, run_ended

log = logging.getLogger("tickwise.housekeeping")

# A run younger than this is left to its own on-commit publish.
PUBLISH_GRACE = timedelta(seconds=5)
# A published run still pending this long, whose message is provably not in
# the queue, is published again (see ``runs_lost``): a live worker claims a
# message it reserved within milliseconds, so this only waits out one that is
# being claimed right now.
LOST_AFTER = timedelta(seconds=5)
SWEEP_BATCH = 1000
# Errors that say the database is out of reach, not that a row is bad.
CONNECTION_ERRORS = (OperationalError, InterfaceError)


def runs_sweep_outbox(*, now: datetime) -> int:
    """Publish pending runs that are due and have no live message.

    Two cases: committed but never published (the publisher died after its
    commit); and published, but the message has provably left the queue while
    the run is still pending (``runs_lost``: it died with the worker that
    reserved it, or the broker lost it). Only when the broker cannot count its
    queue does the sweeper fall back to sending again every run published more
    than ``REPUBLISH_AFTER`` ago: without the count it cannot tell a lost
    message from one waiting behind a backlog, and under a backlog longer than
    that delay each pass would add a duplicate of every waiting run. A run
    published again while its first message was still somewhere is claimed
    once; the spare message finds nothing to claim.
    """
    due = Run.objects.filter(state=RunState.PENDING).filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
    ids = list(due.filter(published_at__isnull=True, created_at__lte=now - PUBLISH_GRACE)
               .order_by("created_at").values_list("id", flat=True)[:SWEEP_BATCH])
    lost = runs_lost(now=now)
    if lost is None:
        stale = now - timedelta(seconds=settings.TICKWISE["REPUBLISH_AFTER"])
        lost = list(due.filter(published_at__lte=stale).order_by("published_at")
                    .values_list("id", flat=True)[:SWEEP_BATCH])
    sent = _publish_isolated(ids + lost, now=now)
    if sent:
        log.info("outbox: published %s run(s)", sent)
    return sent


def runs_lost(*, now: datetime) -> list[int] | None:
    """Published runs, pending for ``LOST_AFTER``, whose message cannot still be in the queue.

    Each lane of the queue (``runs.lanes``) is first in, first out. If a
    run's message were still queued, every message of its lane published after
    it would be queued too (behind it), so the lane would hold at least one
    more message than there are pending runs of the lane published after it.
    When it holds fewer, the message has left the queue:
    a worker reserved it (and, the run still being pending, died before
    claiming it) or the broker lost it. Only those are sent again; a run that
    merely waits behind busy workers is still counted in the queue and is
    left alone, so a busy fleet gets no duplicates.

    The ledger is read before the queue is counted: a message published in
    between only raises the count (fewer runs sent again), never lowers it.
    None when the broker cannot count its queue.
    """
    cutoff = now - LOST_AFTER
    if not Run.objects.filter(state=RunState.PENDING, published_at__lte=cutoff).exists():
        return []  # the usual case: one index probe, no broker round trip
    with connection.cursor() as cursor:
        cursor.execute(sql.PENDING_PUBLISHED_BEHIND, {"stale": cutoff, "now": now, "batch": SWEEP_BATCH})
        candidates = cursor.fetchall()
    queued = queued_by_lane()
    if queued is None:
        return None
    lost = [run_id for run_id, lane, behind in candidates if behind >= queued.get(lane, 0)]
    if lost:
        log.info("outbox: %s run(s) pending whose message left the queue unclaimed: %s", len(lost), lost[:20])
    return lost


def _publish_isolated(ids: list[int], *, now: datetime) -> int:
    """Publish ``ids`` in one batch; if the batch fails for a reason of its own, one by one.

    A run that cannot be published by itself is settled ``failed: config``.
    (A broker that cannot be reached is not such a reason: ``publish_runs_now``
    logs it and leaves every run to the next pass.)
    """
    try:
        return publish_runs_now(ids)
    except CONNECTION_ERRORS:
        raise
    except Exception:
        log.warning("outbox: a batch of %s run(s) failed to publish; publishing one by one", len(ids),
                    exc_info=True)
    return sum(_each(Run.objects.filter(id__in=ids), lambda run: publish_runs_now([run.id]), now=now))


def runs_reap_expired_leases(*, now: datetime) -> int:
    """Runs whose worker vanished: retry when safe, else surface them as ``unknown``/``dead``.

    Safe means the agent was never reached for this attempt (no intent row), or
    its adapter deduplicates by idempotency key. Each reaped attempt counts
    toward ``max_attempts``, so a message that crashes every worker it reaches
    (a poison message) ends ``dead`` instead of looping.
    """
    expired = (Run.objects.filter(state=RunState.RUNNING, lease_expires_at__lt=now)
               .select_related("agent", "schedule"))
    return sum(_each(expired[:SWEEP_BATCH], lambda run: _reap(run, now=now), now=now))


def runs_check_dead_letters(*, now: datetime) -> int:
    """Raise ``dlq_growth`` while the dead-letter queue holds ``ALERT_DLQ_THRESHOLD`` runs or more.

    The episode opens when the depth crosses the threshold, is sent again at
    most once per cool-down while it stays above, and closes by itself when the
    depth falls back below (replayed or deleted runs): the next crossing is a
    new alert. Returns the depth.
    """
    depth = Run.objects.filter(state=RunState.DEAD).count()
    threshold = settings.TICKWISE["ALERT_DLQ_THRESHOLD"]
    if depth < threshold:
        alert_resolve_key(AlertKind.DLQ_GROWTH, "dlq", by="tickwise: below the threshold", now=now)
        return depth
    alert_raise(AlertKind.DLQ_GROWTH, key="dlq", title=f"{depth} runs in the dead-letter queue",
                detail=f"{depth} dead runs (alert threshold {threshold}): see the dead-letter queue "
                       "(manage.py dlq list, or the admin's runs filtered by state dead).", now=now)
    return depth


def _reap(run: Run, *, now: datetime) -> int:
    """1 when the run was reaped, 0 when its attempt had already moved on (finished, or reaped elsewhere)."""
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
    if not Run.objects.fenced(run.id, run.fencing_token).update(**fields, **common):
        return 0
    metrics.lease_reaped(run.trigger, fields["state"], ErrorCategory.CRASHED)
    if fields["state"] != RunState.PENDING:
        run_ended(run, now=now, failed=True)  # a crash that ends the run counts like any failure
    return 1


def _each(runs: Iterable[Run], work: Callable[[Run], int], *, now: datetime) -> list[int]:
    """``work`` on each run in its own savepoint; a run it fails on is settled ``failed: config``."""
    done = []
    for run in runs:
        try:
            with transaction.atomic():
                done.append(work(run))
        except CONNECTION_ERRORS:
            raise
        except Exception as error:
            _settle_unworkable(run, error, now=now)
    return done


def _settle_unworkable(run: Run, error: Exception, *, now: datetime) -> None:
    """End a row the housekeeping could not handle, visibly, so it never blocks a pass again."""
    message = f"housekeeping could not settle this run: {one_line(error)}"
    log.error("run %s: %s; settled failed (config)", run.id, message, exc_info=error)
    try:
        with transaction.atomic():
            ended = Run.objects.fenced(run.id, run.fencing_token, run.state).update(
                state=RunState.FAILED, error_category=ErrorCategory.CONFIG, error_message=message[:2000],
                finished_at=Now(), lease_expires_at=None, buffered=False)
    except CONNECTION_ERRORS:
        raise
    except Exception:
        log.exception("run %s: could not be settled either", run.id)
        return
    if not ended:
        return
    metrics.run_finished(run.trigger, RunState.FAILED, ErrorCategory.CONFIG)
    try:
        with transaction.atomic():
            run_ended(run, now=now, failed=True)
    except CONNECTION_ERRORS:
        raise
    except Exception:
        # The run is terminal and says why; what follows its end is lost, and said so once.
        log.exception("run %s: settled, but its schedule could not be updated", run.id)


def runs_purge_finished(*, now: datetime, keep_days: int) -> int:
    """Delete finished runs older than ``keep_days``, a batch at a time; returns the runs deleted.

    A run that cannot be deleted (a row elsewhere still refers to it) is
    skipped and named in one log line; the others go.
    """
    cutoff = now - timedelta(days=keep_days)
    finished = Run.objects.filter(finished_at__lt=cutoff).exclude(state__in=[RunState.PENDING, RunState.RUNNING])
    deleted, kept = 0, list[int]()
    while ids := list(finished.exclude(id__in=kept).order_by("id").values_list("id", flat=True)[:SWEEP_BATCH]):
        try:
            deleted += _delete(ids)
        except CONNECTION_ERRORS:
            raise
        except DatabaseError:
            for run_id in ids:
                try:
                    deleted += _delete([run_id])
                except CONNECTION_ERRORS:
                    raise
                except DatabaseError:
                    kept.append(run_id)
    if kept:
        log.error("retention: %s run(s) could not be deleted and were kept: %s", len(kept), kept[:20])
    return deleted


def _delete(ids: list[int]) -> int:
    with transaction.atomic():
        _, by_model = Run.objects.filter(id__in=ids).delete()
    return by_model.get(Run._meta.label, 0)
