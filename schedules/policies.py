"""Pure policy decisions: given a schedule's due ticks, what to record.

No side effects: the caller turns the decision into ledger rows.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from runs.models import RunState, SkipReason, Trigger
from runs.services.dispatch import DispatchRequest

from . import timing

# Above this many skipped missed ticks, one counted summary row stands for them.
SUMMARY_THRESHOLD = 10


@dataclass(frozen=True)
class MissedDecision:
    requests: tuple[DispatchRequest, ...]


def missed_decide(schedule, ticks: list[timing.Tick], *, now: datetime) -> MissedDecision:
    grace = timedelta(seconds=schedule.missed_grace_seconds)
    gap = [t for t in ticks if not t.runs]
    live = [t for t in ticks if t.runs]
    missed = [t for t in live if now - t.fire_at > grace]
    on_time = [t for t in live if now - t.fire_at <= grace]
    requests = [_skipped(t, SkipReason.DST_GAP) for t in gap]
    requests += _missed_requests(schedule.missed_policy, missed, cap=schedule.replay_cap,
                                 last_success=schedule.last_tick_at)
    requests += [DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=t.at) for t in on_time]
    return MissedDecision(tuple(sorted(requests, key=lambda r: r.tick_at)))


def _missed_requests(policy: str, missed: list[timing.Tick], *, cap: int,
                     last_success: datetime | None) -> list[DispatchRequest]:
    if not missed:
        return []
    if policy == "coalesce":
        latest = missed[-1]
        return _skip_rows(missed[:-1]) + [DispatchRequest(
            trigger=Trigger.CATCHUP, tick_at=latest.at, missed_count=len(missed),
            period_start=last_success or missed[0].at, period_end=latest.at)]
    if policy == "replay":
        replayed = [DispatchRequest(trigger=Trigger.CATCHUP, tick_at=t.at) for t in missed[:cap]]
        return replayed + _skip_rows(missed[cap:])
    return _skip_rows(missed)


def _skip_rows(ticks: list[timing.Tick]) -> list[DispatchRequest]:
    if len(ticks) <= SUMMARY_THRESHOLD:
        return [_skipped(t, SkipReason.MISSED) for t in ticks]
    # One counted row for a long outage, at the last skipped tick's identity.
    return [DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=ticks[-1].at, state=RunState.SKIPPED,
                            skip_reason=SkipReason.MISSED, missed_count=len(ticks),
                            period_start=ticks[0].at, period_end=ticks[-1].at)]


def _skipped(tick: timing.Tick, reason: str) -> DispatchRequest:
    return DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=tick.at, state=RunState.SKIPPED,
                           skip_reason=reason, missed_count=1)


class Overlap(str, enum.Enum):
    RUN = "run"
    SKIP = "skip"
    WAIT = "wait"            # stay pending, buffered, until the scope frees up
    CANCEL_PREVIOUS = "cancel_previous"  # ask the active runs to stop, then run


def overlap_decide(policy: str, *, active: int, buffered: int, max_concurrent: int,
                   retry: bool = False) -> Overlap:
    """What a run does when ``active`` runs of its concurrency scope are running.

    ``buffered`` counts the *other* runs of the scope already waiting. A retry
    (an earlier attempt may have reached the agent) is never skipped and never
    cancels others: it waits for its turn, so the ledger never calls a run
    that may have acted "skipped".
    """
    decision = _overlap_for_new_run(policy, active=active, buffered=buffered, max_concurrent=max_concurrent)
    if retry and decision in (Overlap.SKIP, Overlap.CANCEL_PREVIOUS):
        return Overlap.WAIT
    return decision


def _overlap_for_new_run(policy: str, *, active: int, buffered: int, max_concurrent: int) -> Overlap:
    if policy == "allow":
        return Overlap.RUN if active < max_concurrent else Overlap.SKIP
    if active == 0:
        return Overlap.RUN
    if policy == "cancel_previous":
        return Overlap.CANCEL_PREVIOUS
    if policy == "buffer_one" and buffered == 0:
        return Overlap.WAIT
    return Overlap.SKIP


def overlap_run_limit(policy: str, *, max_concurrent: int) -> int:
    """Fewer than this many running runs in the scope: the run goes ahead, whatever else applies.

    Lets the claim decide the common case in SQL; ``overlap_decide`` agrees
    with it on every ``active`` below the limit.
    """
    return max_concurrent if policy == "allow" else 1
