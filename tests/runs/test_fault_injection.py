"""Fault injection: workers SIGKILLed at random while beats keep firing.

Four worker processes and two beats run hundreds of short and long runs
against a loopback agent server that counts deliveries per
``Idempotency-Key``, while a driver kills a random worker every few seconds:
usually its whole process group (main process and pool children, as the OOM
killer or a lost node would), sometimes one pool child (which Celery replaces,
and whose message the broker redelivers: ``task_reject_on_worker_lost``).

When the beats stop and the housekeeping (reaper, outbox sweeper) goes quiet,
the ledger must hold exactly one row per tick, each in a terminal state with a
reason when it did not succeed; nothing may be left ``running`` or ``pending``;
and no attempt of a run may have reached the agent twice. A key may reach the
agent again only under a new attempt (the reaper retried a run whose worker
died), which the ``http`` adapter allows because it forwards the key; a key
sent to the ``message`` webhook, which does not deduplicate, arrives at most
once, and a run whose worker died after the call went out is ``unknown``.
"""
from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from kombu.transport.redis import Channel

from adapters import adapter_for
from core import timing
from runs.models import AgentCall, CallState, Run, RunState, Trigger
from runs.pulses import ensure_pulses
from runs.services.claim import run_claim
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.execute import run_execute
from runs.services.housekeeping import runs_reap_expired_leases, runs_sweep_outbox
from runs.services.manual import run_now as schedule_run_now
from runs.services.outcome import record_intent
from scheduler_project import cli
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from tests.adapters.conftest import AgentServer, Delivery, Reply
from tests.broker import queue_clear
from tests.broker import queued as waiting

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS, CONCURRENCY, BEATS = 4, 2, 2
# Seconds; the shortest the settings allow. The sweeper resends a message that
# died with a worker by the queue count; this delay is only its fallback for a
# broker that cannot count, and the drain's measure of "stranded".
REPUBLISH_AFTER = 10
# Short leases, so runs orphaned by a kill are reaped within the test; the broker's own
# redelivery of a dead worker's unacked messages at its minimum.
WORKER_ENV = {"TICKWISE_LEASE_MARGIN": "1", "TICKWISE_REPUBLISH_AFTER": str(REPUBLISH_AFTER),
              "TICKWISE_VISIBILITY_TIMEOUT": "60"}
FINISHED = {RunState.SUCCEEDED, RunState.FAILED, RunState.DEAD, RunState.UNKNOWN, RunState.CANCELLED}


@dataclass(frozen=True)
class Variant:
    fire_seconds: float  # how long the beats fire
    chaos_seconds: float  # kills happen in this first part of it
    drain_seconds: float  # how long the ledger may take to settle afterwards


DEFAULT = Variant(fire_seconds=40, chaos_seconds=32, drain_seconds=45)
SOAK = Variant(fire_seconds=600, chaos_seconds=590, drain_seconds=120)


@dataclass
class Chaos:
    seed: int
    group_kills: int = 0
    child_kills: int = 0
    log: list[str] = field(default_factory=list)


def agent_reply(delivery: Delivery) -> Reply:
    """Work for as long as the input says (``work 1.5``), then answer.

    ``http`` agents POST ``input`` (and the attempt); ``message`` webhooks POST ``text``.
    """
    seconds = float(str(delivery.body.get("input", delivery.body.get("text"))).split()[1])
    return Reply(body={"done": delivery.headers["idempotency-key"]}, delay=seconds)


@pytest.fixture
def agent_server() -> Iterator[AgentServer]:
    server = AgentServer(agent_reply).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _forget_killed_reservations() -> Iterator[None]:
    """Drop this run's messages that killed consumers left reserved, and its queue.

    The broker would otherwise restore them, one visibility timeout later,
    into a queue that no test reads any more (the Redis may be shared).
    """
    yield
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    for tag, raw in broker.hgetall(Channel.unacked_key).items():
        if json.loads(raw)[2] == queue:
            broker.hdel(Channel.unacked_key, tag)
            broker.zrem(Channel.unacked_index_key, tag)
    queue_clear(broker)


def make_fleet(server: AgentServer) -> list[Schedule]:
    """Short runs every 2 s and long ones every 3 s, under both overlap policies that run work.

    Most go to an ``http`` agent (idempotent: it forwards the key, so a run
    whose worker died may be retried); two go to a ``message`` webhook, which
    is not idempotent: a run whose call may have gone out is never retried.
    """
    agent = Agent.objects.create(name="chaos", adapter="http", config={"url": f"{server.url}/run"})
    webhook = Agent.objects.create(name="chaos-hook", adapter="message", config={"url": f"{server.url}/hook"})
    now = timezone.now()
    specs = [(agent, f"short-{i}", 2, [0, 0.1, 0.2, 0.5][i % 4], 3) for i in range(8)]
    specs += [(agent, f"long-{i}", 3, [1.5, 2.0][i % 2], 5) for i in range(4)]
    specs += [(webhook, "hook-short", 2, 0.1, 3), (webhook, "hook-long", 3, 1.0, 5)]
    fleet = []
    for index, (agent, name, every, work, timeout) in enumerate(specs):
        overlap = {"overlap_policy": "allow", "max_concurrent": 3} if index % 2 else {}
        fleet.append(schedule_save(Schedule(
            agent=agent, name=name, kind="interval", interval_seconds=every, timeout_seconds=timeout,
            input_template=f"work {work}", max_attempts=3, retry_backoff_seconds=1, retry_backoff_max_seconds=2,
            **overlap), now=now))
    return fleet + poisoned_schedules(now=now)


def poisoned_schedules(*, now: datetime) -> list[Schedule]:
    """Schedules whose every run fails before or during the call: each must end, never stall the rest.

    Made valid, then broken through the ORM, as a migration or a shell could:
    an agent whose adapter kind does not exist, one whose adapter raises a
    plain exception (echo with ``sleep: "abc"``), and a template that does not
    render. ``failure_limit=0``: they keep firing for the whole test.
    """
    made = []
    for name in ("no-adapter", "raises", "bad-template"):
        agent = Agent.objects.create(name=f"poisoned-{name}", adapter="echo")
        made.append(schedule_save(Schedule(agent=agent, name=name, kind="interval", interval_seconds=2,
                                           timeout_seconds=3, failure_limit=0, max_attempts=3), now=now))
    Agent.objects.filter(name="poisoned-no-adapter").update(adapter="bogus")
    Agent.objects.filter(name="poisoned-raises").update(config={"sleep": "abc"})
    Schedule.objects.filter(pk=made[2].pk).update(input_template="{{no_such_variable}}")
    return made


class Fleet:
    """The worker processes; each kill is followed by a restart under a new name."""

    def __init__(self, stack, waiter) -> None:
        self.stack, self.waiter, self.generation = stack, waiter, 0
        self.procs = [self._start(i) for i in range(WORKERS)]
        for proc in self.procs:
            self._wait_ready(proc)

    def _start(self, slot: int):
        self.generation += 1
        name = f"w{slot}-{self.generation}"
        return self.stack.start(cli.worker_command(f"test-{name}", CONCURRENCY), name, extra_env=WORKER_ENV)

    def _wait_ready(self, proc) -> None:
        self.waiter(lambda: "ready." in proc.log.read_text(), timeout=90, what=f"worker {proc.log.name} to start")

    def kill_group(self, slot: int) -> None:
        """SIGKILL the worker's process group and start its replacement (not waiting: it may die booting)."""
        self.stack.kill(self.procs[slot])
        self.procs[slot] = self._start(slot)

    def wait_ready(self) -> None:
        for proc in self.procs:
            self._wait_ready(proc)

    def kill_child(self, slot: int, rng: random.Random) -> bool:
        """SIGKILL one pool child; the worker replaces it and the broker redelivers its message."""
        children = _children(self.procs[slot].pid)
        if not children:
            return False  # still booting
        os.kill(rng.choice(children), signal.SIGKILL)
        return True


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def run_chaos(fleet: Fleet, chaos: Chaos, seconds: float) -> None:
    rng = random.Random(chaos.seed)
    deadline = time.monotonic() + seconds
    while time.monotonic() + 2 < deadline:
        time.sleep(rng.uniform(2, 4))
        slot = rng.randrange(WORKERS)
        if rng.random() < 0.7:
            fleet.kill_group(slot)
            chaos.group_kills += 1
            chaos.log.append(f"{time.monotonic():.1f} group w{slot}")
        elif fleet.kill_child(slot, rng):
            chaos.child_kills += 1
            chaos.log.append(f"{time.monotonic():.1f} child w{slot}")


def drain(fleet_schedules: list[Schedule], server: AgentServer, seconds: float) -> list[Run]:
    """Run the reaper and the sweeper until no run is left in flight; returns those that stay.

    Returns early when every run left has been stranded (see ``stranded_runs``)
    for twice the republish delay: the housekeeping did not move them.
    """
    deadline = time.monotonic() + seconds
    quiet_since = stranded_since = None
    in_flight: list[Run] = []
    while time.monotonic() < deadline:
        now = timezone.now()
        acted = runs_reap_expired_leases(now=now) + runs_sweep_outbox(now=now)
        in_flight = list(Run.objects.filter(schedule__in=fleet_schedules, state__in=[RunState.PENDING,
                                                                                      RunState.RUNNING]))
        if acted or in_flight:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = (time.monotonic(), len(server.deliveries))
        elif time.monotonic() - quiet_since[0] > 3 and len(server.deliveries) == quiet_since[1]:
            return []
        if in_flight and not acted and len(stranded_runs(in_flight)) == len(in_flight):
            stranded_since = stranded_since or time.monotonic()
            if time.monotonic() - stranded_since > 2 * REPUBLISH_AFTER:
                return in_flight
        else:
            stranded_since = None
        time.sleep(0.5)
    return in_flight


SKIPPED_AFTER_CALL = "recorded 'skipped' although an attempt of it reached the agent"


def fault_injection(stack, waiter, server: AgentServer, variant: Variant, settings) -> None:
    ensure_pulses(IntervalSchedule, PeriodicTask)  # the test database is flushed between tests
    # The drain's own sweeps, like the workers', republish stranded messages within the test.
    settings.TICKWISE = {**settings.TICKWISE, "REPUBLISH_AFTER": REPUBLISH_AFTER}
    chaos = Chaos(seed=int(os.environ.get("TICKWISE_CHAOS_SEED", random.randrange(1 << 30))))
    print(f"\nchaos seed {chaos.seed} (set TICKWISE_CHAOS_SEED to replay the kill sequence)")
    schedules = make_fleet(server)
    fleet = Fleet(stack, waiter)
    beats = [stack.beat(name=f"beat{i}") for i in range(BEATS)]
    started = time.monotonic()

    run_chaos(fleet, chaos, variant.chaos_seconds)
    fleet.wait_ready()
    time.sleep(max(0.0, variant.fire_seconds - (time.monotonic() - started)))
    for beat in beats:
        stack.kill(beat, signal.SIGTERM)
    stuck = drain(schedules, server, variant.drain_seconds)

    rows = list(Run.objects.filter(schedule__in=schedules).select_related("schedule", "agent"))
    report(rows, server, chaos)
    attempts = delivered_attempts(server)
    known = {**stranded_runs(stuck), **skipped_after_the_agent(rows, attempts)}
    assert not stuck, "runs still in flight after the drain:\n" + "\n".join(
        f"{describe(run)} {known.get(run, '')}" for run in stuck)
    assert not known, "\n".join(f"{describe(run)}: {why}" for run, why in known.items())
    assert_one_row_per_tick(schedules)
    assert_terminal_with_reason(rows)
    assert_no_attempt_delivered_twice(rows, attempts)
    assert_poisoned_runs_failed(rows)
    assert chaos.group_kills + chaos.child_kills >= variant.chaos_seconds // 6, chaos.log


def report(rows: list[Run], server: AgentServer, chaos: Chaos) -> None:
    states = Counter(f"{run.state}{':' + (run.skip_reason or run.error_category) if run.state != 'succeeded' else ''}"
                     for run in rows)
    retried = Counter(run.attempt for run in rows if run.state == RunState.SUCCEEDED)
    twice = sum(1 for run in rows if run.state == RunState.SUCCEEDED and server.per_key[run.idempotency_key] > 1)
    hooks = Counter(run.state for run in rows if run.agent.adapter == "message")
    print(f"kills: {chaos.group_kills} process groups, {chaos.child_kills} pool children")
    print(f"runs: {len(rows)} rows, states {dict(states)}; of them webhook runs {dict(hooks)}")
    print(f"succeeded runs by final attempt: {dict(sorted(retried.items()))}")
    print(f"agent deliveries: {len(server.deliveries)} for {len(server.per_key)} keys; "
          f"succeeded runs whose key was delivered more than once (earlier attempts lost): {twice}")
    print(f"start delay (tick to first attempt): {start_delays(rows)}")


def start_delays(rows: list[Run]) -> str:
    """p50/p99/max from each run's tick, and from its dispatch, to its first attempt (a report, not an assertion)."""
    first = dict(AgentCall.objects.filter(run__in=rows, attempt=1).values_list("run_id", "started_at"))
    started = [(run, first[run.pk]) for run in rows if run.pk in first]
    if not started:
        return "no attempts"
    from_tick = sorted((at - run.tick_at).total_seconds() for run, at in started)
    from_dispatch = sorted((at - run.tick_at).total_seconds() - (run.lateness_ms or 0) / 1000 for run, at in started)
    return f"from the tick {_percentiles(from_tick)}; from dispatch {_percentiles(from_dispatch)}; {len(started)} runs"


def _percentiles(values: list[float]) -> str:
    p50, p99 = (values[min(len(values) - 1, int(share * len(values)))] for share in (0.5, 0.99))
    return f"p50 {p50:.2f}s p99 {p99:.2f}s max {values[-1]:.2f}s"


def describe(run: Run) -> str:
    return (f"  run {run.pk} {run.schedule.name} tick {run.tick_at:%H:%M:%S.%f} {run.state} attempt {run.attempt} "
            f"token {run.fencing_token} published {run.published_at} not_before {run.not_before} "
            f"lease {run.lease_owner} until {run.lease_expires_at} error {run.error_category}")


def stranded_runs(stuck: list[Run]) -> dict[Run, str]:
    """Pending runs marked published whose message no worker will see before the visibility timeout."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    reserved = unacked_runs(broker, queue)
    queued = {_run_id(message) for message in map(json.loads, waiting(broker))
              if message["headers"].get("task") == "runs.execute"}  # the pulses share the queue
    stranded = {}
    for run in stuck:
        if run.state != RunState.PENDING or run.published_at is None or run.pk in queued:
            continue
        if run.pk in reserved:
            stranded[run] = f"stranded, its message reserved at {reserved[run.pk]:%H:%M:%S.%f} and never acknowledged"
        else:
            stranded[run] = "stranded, its message neither queued nor reserved"
    return stranded


def unacked_runs(broker: redis.Redis, queue: str) -> dict[int, object]:
    """Run ids of this queue's execute messages that a consumer reserved and never acknowledged."""
    found = {}
    for tag, raw in broker.hgetall(Channel.unacked_key).items():
        message, _exchange, routing_key = json.loads(raw)
        if routing_key == queue and message["headers"].get("task") == "runs.execute":
            since = broker.zscore(Channel.unacked_index_key, tag) or 0
            found[_run_id(message)] = datetime.fromtimestamp(since, tz=UTC)
    return found


def _run_id(message: dict) -> int:
    return int(json.loads(message["headers"]["argsrepr"])[0])


def assert_one_row_per_tick(schedules: list[Schedule]) -> None:
    doubled = (Run.objects.filter(schedule__in=schedules).values("schedule", "tick_at")
               .annotate(rows=Count("id")).filter(rows__gt=1))
    assert not doubled.exists(), list(doubled)
    for schedule in schedules:
        ticks = list(Run.objects.filter(schedule=schedule).order_by("tick_at").values_list("tick_at", flat=True))
        assert len(ticks) > 3, f"{schedule}: only {len(ticks)} ticks"
        expected = [tick.at for tick in timing.ticks_between(
            schedule.plan(), after=ticks[0] - timedelta(microseconds=1), until=ticks[-1])]
        assert ticks == expected, f"{schedule}: the ledger's ticks differ from the timeline"


def assert_terminal_with_reason(rows: list[Run]) -> None:
    for run in rows:
        if run.state == RunState.SKIPPED:
            assert run.skip_reason, describe(run)
        else:
            assert run.state in FINISHED, describe(run)
            assert run.finished_at is not None, describe(run)
            assert run.state == RunState.SUCCEEDED or run.error_category, describe(run)


def assert_poisoned_runs_failed(rows: list[Run]) -> None:
    """Every run of a poisoned schedule ended failed (or skipped by the overlap policy), none by a crash."""
    poisoned = [run for run in rows if run.agent.name.startswith("poisoned-")]
    assert poisoned, "no poisoned runs"
    for run in poisoned:
        if run.state != RunState.SKIPPED:
            assert (run.state, run.error_category) in {(RunState.FAILED, "config"), (RunState.FAILED, "agent_error"),
                                                       (RunState.DEAD, "crashed"), (RunState.UNKNOWN, "crashed")}, \
                describe(run)


def delivered_attempts(server: AgentServer) -> dict[str, list[int | None]]:
    """What reached the agent, per idempotency key: attempt numbers (None for webhooks, which carry none)."""
    attempts: dict[str, list[int | None]] = defaultdict(list)
    for delivery in list(server.deliveries):
        attempts[delivery.headers["idempotency-key"]].append(delivery.body.get("attempt"))
    return attempts


def skipped_after_the_agent(rows: list[Run], attempts: dict[str, list[int | None]]) -> dict[Run, str]:
    return {run: f"{SKIPPED_AFTER_CALL} (attempts {attempts[run.idempotency_key]} reached the agent)"
            for run in rows if run.state == RunState.SKIPPED and attempts.get(run.idempotency_key)}


def assert_no_attempt_delivered_twice(rows: list[Run], attempts: dict[str, list[int | None]]) -> None:
    by_key = {run.idempotency_key: run for run in rows}
    assert set(attempts) <= set(by_key), "the agent received a key the ledger does not know"
    for key, seen in attempts.items():
        run = by_key[key]
        if adapter_for(run.agent.adapter).idempotent:
            # Two workers running one attempt would deliver its number twice.
            assert len(seen) == len(set(seen)), f"attempts {seen} reached the agent: {describe(run)}"
            assert max(seen) <= run.attempt, f"attempts {seen}: {describe(run)}"
        else:
            # The receiver does not deduplicate: a second delivery is a second effect.
            assert len(seen) == 1, f"{len(seen)} deliveries to a non-idempotent webhook: {describe(run)}"
    for run in rows:
        if run.state == RunState.SUCCEEDED:
            seen = attempts[run.idempotency_key]
            assert (run.attempt in seen) if adapter_for(run.agent.adapter).idempotent else seen, describe(run)
            call = AgentCall.objects.get(run=run, attempt=run.attempt)
            assert call.state == CallState.SUCCEEDED, describe(run)


def test_workers_killed_at_random_leave_one_terminal_row_per_tick(stack, waiter, agent_server, settings):
    fault_injection(stack, waiter, agent_server, DEFAULT, settings)


@pytest.mark.soak
@pytest.mark.skipif(os.environ.get("TICKWISE_SOAK") != "1",
                    reason="the 10-minute soak runs only with TICKWISE_SOAK=1")
def test_soak_workers_killed_at_random_for_ten_minutes(stack, waiter, agent_server, settings):
    fault_injection(stack, waiter, agent_server, SOAK, settings)


# A worker's part in this, reduced to what the broker sees: reserve one
# message without acknowledging it, then hang until killed.
RESERVE_AND_HANG = """
import sys, time
from scheduler_project.celery import app
with app.connection_for_read() as connection:
    message = connection.SimpleQueue(sys.argv[1]).get(timeout=60)
    print("reserved", message.headers["argsrepr"], flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("fate", ["reserved by a worker that died", "lost by the broker"])
def test_a_published_run_whose_message_vanished_is_published_again(stack, waiter, fate):
    agent = Agent.objects.create(name="stranded", adapter="echo")
    schedule = schedule_save(Schedule(agent=agent, name="yearly", cron="0 0 1 1 *"), now=timezone.now())
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)
    run = schedule_run_now(schedule, now=timezone.now())  # published on commit; no worker yet
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    if fate == "lost by the broker":
        assert _run_id(json.loads(broker.rpop(queue))) == run.pk
    else:
        holder = stack.start([cli.PYTHON, "-c", RESERVE_AND_HANG, queue], "holder", ready="reserved")
        stack.kill(holder)
        assert run.pk in unacked_runs(broker, queue)

    stack.worker()  # the production visibility timeout: the broker will not redeliver for hours
    later = timezone.now() + timedelta(minutes=10)
    runs_reap_expired_leases(now=later)
    runs_sweep_outbox(now=later)
    waiter(lambda: Run.objects.filter(pk=run.pk, state=RunState.SUCCEEDED).exists(), timeout=20,
           what=f"run {run.pk} to run ten minutes after its message was {fate}")


@pytest.mark.django_db
def test_a_reaped_run_whose_attempt_reached_the_agent_is_never_recorded_skipped():
    agent = Agent.objects.create(name="overlapping", adapter="echo")
    schedule = Schedule.objects.create(agent=agent, name="minutely", cron="* * * * *", overlap_policy="skip")
    t0 = timezone.now()
    first = run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=t0), now=t0)
    gone = run_claim(first.id, owner="gone", now=t0)
    assert gone is not None and record_intent(gone, "report")  # the call went out, then the worker died
    later = Run.objects.get(pk=first.pk).lease_expires_at + timedelta(seconds=1)
    assert runs_reap_expired_leases(now=later) == 1
    second = run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=t0 + timedelta(minutes=1)),
                          now=later)
    assert run_claim(second.id, owner="next", now=later) is not None  # the next tick runs meanwhile

    run_claim(first.id, owner="retry", now=later)  # the reaped run comes back
    first.refresh_from_db()
    assert first.state != RunState.SKIPPED, f"{first}: recorded as never run after attempt 1 reached the agent"


@pytest.mark.django_db
def test_a_webhook_that_answers_too_late_is_not_posted_again():
    server = AgentServer(Reply(body={"ok": True}, delay=2.0)).start()
    try:
        agent = Agent.objects.create(name="late-hook", adapter="message",
                                     config={"url": f"{server.url}/hook", "timeout": 1})
        schedule = Schedule.objects.create(agent=agent, name="minutely", cron="* * * * *", max_attempts=3)
        now = timezone.now()
        run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=now), now=now)
        for _ in range(schedule.max_attempts):  # each due retry, as the sweeper would publish it
            run.refresh_from_db()
            now = max(now, run.not_before or now)
            run_execute(run.id, owner="w", now=now)
        run.refresh_from_db()
        assert server.per_key[run.idempotency_key] == 1, (
            f"{run}: the webhook received the key {server.per_key[run.idempotency_key]} times")
        assert (run.state, run.error_category) == (RunState.UNKNOWN, "timeout")
    finally:
        server.stop()
