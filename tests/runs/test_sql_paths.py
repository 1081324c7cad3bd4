"""Where a transition has a fast SQL path beside its ORM path, both write the same columns.

The claim is written twice: ``runs.sql.CLAIM_IF_ROOM`` (the common case, one
round trip) and ``claim._take`` (the general path, after the overlap policy
decided). Two identical runs, one claimed each way, must end identical but
for their identity and the clock.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import AgentCall, Run, RunState, Trigger
from runs.services import claim as claims
from runs.services.dispatch import DispatchRequest, run_dispatch
from schedules.models import Agent, Schedule

# Differ by construction (identity, clock), not by path.
IDENTITY = {"id", "tick_at", "idempotency_key", "run_number", "created_at", "started_at", "lease_expires_at",
            "lateness_ms", "period_end", "session_id", "chain_id"}


@pytest.fixture
def twins(db) -> tuple[Run, Run]:
    agent = Agent.objects.create(name="twins", adapter="echo")
    schedule = Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *", overlap_policy="allow",
                                       max_concurrent=5)
    tick = timezone.now().replace(microsecond=0)
    return tuple(run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=tick + timedelta(hours=i)),
                              now=tick, publish=False) for i in range(2))  # type: ignore[return-value]


def test_the_sql_claim_and_the_orm_claim_write_the_same_columns(twins):
    fast, general = twins
    now = timezone.now()
    assert claims._claim_if_room(claims.run_load(fast.id), owner="w", now=now, intent="in") is not None
    assert claims._take(claims.run_load(general.id), owner="w", cancel_others=False, now=now,
                        intent="in") is not None
    fast_row, general_row = Run.objects.get(id=fast.id), Run.objects.get(id=general.id)
    assert fast_row.state == RunState.RUNNING
    for field in Run._meta.concrete_fields:
        if field.name not in IDENTITY:
            assert getattr(fast_row, field.attname) == getattr(general_row, field.attname), field.name
    assert fast_row.lease_expires_at - fast_row.started_at == general_row.lease_expires_at - general_row.started_at
    fast_call, general_call = AgentCall.objects.get(run=fast_row), AgentCall.objects.get(run=general_row)
    for field in AgentCall._meta.concrete_fields:
        if field.name not in {"id", "run", "started_at", "idempotency_key"}:
            assert getattr(fast_call, field.attname) == getattr(general_call, field.attname), field.name
    assert (fast_call.idempotency_key, general_call.idempotency_key) == (fast_row.idempotency_key,
                                                                         general_row.idempotency_key)
