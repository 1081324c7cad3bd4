"""core.metrics counts what the policies decided: every missed tick once, whatever the missed-run policy.

In this process the counters are in memory (no multiprocess directory):
each test reads a counter before and after.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from core import metrics
from core.policies import MissedPolicy, missed_decide
from core.timing.spec import Tick

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def ticks(count: int) -> list[Tick]:
    """``count`` hourly ticks, all well past the grace period, and one on time."""
    at = [NOW - timedelta(hours=count - i) for i in range(count)] + [NOW]
    return [Tick(at=t, fire_at=t, local=t) for t in at]


def missed(policy: str) -> float:
    return REGISTRY.get_sample_value("tickwise_missed_ticks_total", {"policy": policy}) or 0.0


@pytest.mark.parametrize("count", [3, 25])  # a few rows, and one counted summary row
@pytest.mark.parametrize("policy", ["skip", "coalesce", "replay"])
def test_each_missed_tick_is_counted_once(policy, count):
    decisions = missed_decide(MissedPolicy(policy, timedelta(minutes=1), replay_cap=5, last_tick_at=None),
                              ticks(count), now=NOW)
    before = missed(policy)
    metrics.ticks_missed(policy, decisions)
    assert missed(policy) - before == count


def test_a_duplicate_dispatch_is_counted_as_refused_not_dispatched():
    def value(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"trigger": "event"}) or 0.0

    dispatched, duplicates = value("tickwise_runs_dispatched_total"), value("tickwise_duplicate_dispatches_total")
    metrics.run_inserted("event", "pending", "", inserted=True, lateness_ms=1500)
    metrics.run_inserted("event", "pending", "", inserted=False, lateness_ms=1500)
    assert value("tickwise_runs_dispatched_total") - dispatched == 1
    assert value("tickwise_duplicate_dispatches_total") - duplicates == 1


def test_a_run_recorded_skipped_at_dispatch_is_a_finished_run_with_its_reason():
    labels = {"trigger": "schedule", "state": "skipped", "error_category": ""}
    before = REGISTRY.get_sample_value("tickwise_runs_finished_total", labels) or 0.0
    reason = REGISTRY.get_sample_value("tickwise_runs_skipped_total", {"reason": "dst_gap"}) or 0.0
    metrics.run_inserted("schedule", "skipped", "dst_gap", inserted=True, lateness_ms=0)
    assert REGISTRY.get_sample_value("tickwise_runs_finished_total", labels) - before == 1
    assert REGISTRY.get_sample_value("tickwise_runs_skipped_total", {"reason": "dst_gap"}) - reason == 1
