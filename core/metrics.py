"""Prometheus metrics of the ledger and the beat, counted where the ledger is written.

Every process of the stack (gunicorn's workers, Celery's prefork children, the
beat) counts into its own files under ``PROMETHEUS_MULTIPROC_DIR``, which
prometheus-client reads when it is imported: ``./tickwise`` sets it for each
process it starts, and ``/metrics`` (``shells.metrics``) adds the files up.
Without it, each process counts in memory and ``/metrics`` shows the web
process's own counts only.

Labels are bounded enums only (trigger, state, error category, skip reason,
policy): never a schedule or run id, which would make one series per row. The
ledger answers per-schedule questions. Gauges that describe the database
(due lag, dead-letter depth, schedules by state) are not here: ``/metrics``
reads them from PostgreSQL at scrape time, so every process agrees on them.

Each counter counts an event when it happens: a replayed run that ends again
is a second ending, though the ledger keeps one row.
"""
from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from .policies import SkipWhy, TickAction, TickDecision

RUNS_DISPATCHED = Counter("tickwise_runs_dispatched", "Runs inserted pending, to be executed.", ["trigger"])
RUNS_SKIPPED = Counter("tickwise_runs_skipped", "Runs (ticks, events, wakeups) recorded skipped, by reason.",
                       ["reason"])
OVERLAP_SKIPS = Counter("tickwise_overlap_skips", "Runs skipped at the claim by their overlap policy.", ["policy"])
MISSED_TICKS = Counter("tickwise_missed_ticks", "Ticks found missed by the beat (after downtime), by missed-run "
                                                "policy.", ["policy"])
DUPLICATE_DISPATCHES = Counter("tickwise_duplicate_dispatches", "Dispatches refused by a unique constraint: the "
                                                                "run already existed.", ["trigger"])
RUNS_FINISHED = Counter("tickwise_runs_finished", "Runs that reached a terminal state.",
                        ["trigger", "state", "error_category"])
RETRIES = Counter("tickwise_retries", "Failed attempts sent back to pending for another attempt.",
                  ["error_category"])
DEAD_LETTERS = Counter("tickwise_dead_letters", "Runs that ended dead (retries exhausted).", ["trigger"])
FENCING_REJECTS = Counter("tickwise_fencing_rejects", "Outcome writes refused because the attempt's fencing token "
                                                      "was stale.", ["outcome"])
LEASES_REAPED = Counter("tickwise_leases_reaped", "Running runs whose lease expired, settled by the reaper.",
                        ["outcome"])
DISPATCH_LATENESS = Histogram("tickwise_dispatch_lateness_seconds", "Dispatch time minus the tick's instant.",
                              ["trigger"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600))
RUN_DURATION = Histogram("tickwise_run_duration_seconds", "One attempt, from its claim to its recorded outcome.",
                         ["trigger", "state"], buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600))


def run_inserted(trigger: str, state: str, skip_reason: str, *, inserted: bool, lateness_ms: int | None) -> None:
    """One dispatch: a pending run, a run recorded skipped at once, or a duplicate the database refused."""
    if not inserted:
        DUPLICATE_DISPATCHES.labels(str(trigger)).inc()
    elif state == "pending":
        RUNS_DISPATCHED.labels(str(trigger)).inc()
        if lateness_ms is not None:
            DISPATCH_LATENESS.labels(str(trigger)).observe(max(0.0, lateness_ms / 1000))
    else:
        run_finished(trigger, state, skip_reason=skip_reason)


def run_finished(trigger: str, state: str, category: str = "", *, skip_reason: str = "") -> None:
    """A terminal transition (each is a fenced compare-and-set: counted by its one winner)."""
    RUNS_FINISHED.labels(str(trigger), str(state), str(category or "")).inc()
    if state == "skipped":
        RUNS_SKIPPED.labels(str(skip_reason or "")).inc()
    elif state == "dead":
        DEAD_LETTERS.labels(str(trigger)).inc()


def attempt_failed(trigger: str, state: str, category: str) -> None:
    """A failed attempt: a retry when it went back to pending, otherwise the run's end."""
    if state == "pending":
        RETRIES.labels(str(category)).inc()
    else:
        run_finished(trigger, state, category)


def overlap_skipped(trigger: str, policy: str) -> None:
    OVERLAP_SKIPS.labels(str(policy)).inc()
    run_finished(trigger, "skipped", skip_reason="overlap")


def lease_reaped(trigger: str, state: object, category: str) -> None:
    """The reaper settled an expired lease: retried (back to pending), dead or unknown."""
    LEASES_REAPED.labels("retried" if state == "pending" else str(state)).inc()
    attempt_failed(trigger, str(state), category)


def ticks_missed(policy: str, decisions: Iterable[TickDecision]) -> None:
    """Missed ticks in one beat pass: each caught up, and each skipped as missed (a summary row counts its ticks)."""
    missed = sum(d.missed_count if d.skip is SkipWhy.MISSED else int(d.action is TickAction.CATCH_UP)
                 for d in decisions)
    if missed:
        MISSED_TICKS.labels(str(policy)).inc(missed)
