"""Pure policy decisions: given a schedule's due ticks, what to record.

No Django, no side effects, no ledger vocabulary: a policy returns its own
decision values (``TickDecision``, ``Overlap``) and the caller turns them into
ledger rows.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import timing

# Above this many skipped missed ticks, one counted summary row stands for them.
SUMMARY_THRESHOLD = 10


class TickAction(str, enum.Enum):
    RUN = "run"              # an on-time tick: a run
    CATCH_UP = "catch_up"    # a missed tick run late (coalesce, replay)
    SKIP = "skip"            # a tick recorded as skipped, with a reason


class SkipWhy(str, enum.Enum):
    DST_GAP = "dst_gap"
    MISSED = "missed"


@dataclass(frozen=True)
class TickDecision:
    """What to record for one tick (or, with ``missed_count`` > 1, a counted run of them)."""

    action: TickAction
    tick_at: datetime
    skip: SkipWhy | None = None
    missed_count: int = 0
    period_start: datetime | None = None
    period_end: datetime | None = None


@dataclass(frozen=True)
class MissedPolicy:
    """The schedule's settings the missed-run policy reads."""

    policy: str  # skip | coalesce | replay
    grace: timedelta
    replay_cap: int
    last_tick_at: datetime | None


def missed_decide(policy: MissedPolicy, ticks: list[timing.Tick], *, now: datetime) -> tuple[TickDecision, ...]:
    """One decision per due tick (or summary), in tick order."""
    gap = [t for t in ticks if not t.runs]
    live = [t for t in ticks if t.runs]
    missed = [t for t in live if now - t.fire_at > policy.grace]
    on_time = [t for t in live if now - t.fire_at <= policy.grace]
    decisions = [_skipped(t, SkipWhy.DST_GAP) for t in gap]
    decisions += _missed_decisions(policy.policy, missed, cap=policy.replay_cap, last_success=policy.last_tick_at)
    decisions += [TickDecision(TickAction.RUN, t.at) for t in on_time]
    return tuple(sorted(decisions, key=lambda d: d.tick_at))


def _missed_decisions(policy: str, missed: list[timing.Tick], *, cap: int,
                      last_success: datetime | None) -> list[TickDecision]:
    if not missed:
        return []
    if policy == "coalesce":
        latest = missed[-1]
        return _skip_rows(missed[:-1]) + [TickDecision(
            TickAction.CATCH_UP, latest.at, missed_count=len(missed),
            period_start=last_success or missed[0].at, period_end=latest.at)]
    if policy == "replay":
        replayed = [TickDecision(TickAction.CATCH_UP, t.at) for t in missed[:cap]]
        return replayed + _skip_rows(missed[cap:])
    return _skip_rows(missed)


def _skip_rows(ticks: list[timing.Tick]) -> list[TickDecision]:
    if len(ticks) <= SUMMARY_THRESHOLD:
        return [_skipped(t, SkipWhy.MISSED) for t in ticks]
    # One counted row for a long outage, at the last skipped tick's identity.
    return [TickDecision(TickAction.SKIP, ticks[-1].at, skip=SkipWhy.MISSED, missed_count=len(ticks),
                         period_start=ticks[0].at, period_end=ticks[-1].at)]


def _skipped(tick: timing.Tick, why: SkipWhy) -> TickDecision:
    return TickDecision(TickAction.SKIP, tick.at, skip=why, missed_count=1)


class Overlap(str, enum.Enum):
    RUN = "run"
    SKIP = "skip"
    WAIT = "wait"            # stay pending, buffered, until the scope frees up
    CANCEL_PREVIOUS = "cancel_previous"  # ask the active runs to stop, then run


def overlap_decide(policy: str, *, active: int, buffered: int, max_concurrent: int,
                   retry: bool = False, ahead: int = 0) -> Overlap:
    """What a run does when ``active`` runs of its concurrency scope are running.

    ``buffered`` counts the *other* runs of the scope already waiting;
    ``ahead`` the pending runs of the scope dispatched before this one (only
    ``buffer`` reads it: its runs start in dispatch order). A retry
    (an earlier attempt may have reached the agent) is never skipped and never
    cancels others: it waits for its turn, so the ledger never calls a run
    that may have acted "skipped".
    """
    if policy == "buffer":
        # Every run waits its turn: none is skipped, none overtakes an earlier one.
        return Overlap.RUN if active == 0 and ahead == 0 else Overlap.WAIT
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


def overlap_keeps_order(policy: str) -> bool:
    """Whether a run must also wait for the scope's earlier pending runs, not only for running ones."""
    return policy == "buffer"


def overlap_run_limit(policy: str, *, max_concurrent: int) -> int:
    """Fewer than this many running runs in the scope: the run goes ahead, whatever else applies.

    Lets the claim decide the common case in SQL; ``overlap_decide`` agrees
    with it on every ``active`` below the limit.
    """
    return max_concurrent if policy == "allow" else 1
