"""Event routing against real PostgreSQL and Redis: matching, identity, sessions, loop breakers.

Events are stored the way the ingress stores them; each test routes them with
``event_route`` and an explicit ``now``, and reads the ledger.
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.test import override_settings

from alerts.models import Alert
from events.models import InboundEvent, Route, RoutingOutcome, Subscription
from runs.models import Run, RunState, SkipReason, Trigger
from schedules.models import Agent
from triggers.routing import event_route, events_route_stale
from workspaces.models import Workspace, default_workspace

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
_ids = count(1)


def store(type_: str, data: dict | None = None, *, at: datetime = NOW, **fields) -> InboundEvent:
    payload = data if data is not None else {"n": next(_ids)}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    fields.setdefault("workspace_id", default_workspace())
    return InboundEvent.objects.create(event_id=fields.pop("event_id", f"evt-{next(_ids)}"), type=type_,
                                       received_at=at, payload=payload, payload_hash=digest, **fields)


@pytest.fixture
def agent() -> Agent:
    return Agent.objects.create(name="reactor", adapter="echo")


def subscribe(agent: Agent, name: str, event_type: str, **fields) -> Subscription:
    return Subscription.objects.create(agent=agent, workspace_id=agent.workspace_id, name=name,
                                       event_type=event_type, **fields)


def runs_of(subscription: Subscription) -> list[Run]:
    return list(Run.objects.filter(route__subscription=subscription).order_by("id"))


def test_exact_prefix_and_payload_matches_each_start_one_event_run(agent):
    exact = subscribe(agent, "exact", "github.push")
    prefix = subscribe(agent, "prefix", "github.*")
    web_only = subscribe(agent, "web", "github.push", match={"data.repo": "web"})
    other = subscribe(agent, "other", "gitlab.*")
    event = store("github.push", {"repo": "api"})
    routed = event_route(event.id, now=NOW)
    assert routed.outcome == RoutingOutcome.ROUTED and len(routed.runs) == 2
    assert [len(runs_of(s)) for s in (exact, prefix, web_only, other)] == [1, 1, 0, 0]
    run = runs_of(exact)[0]
    assert (run.trigger, run.state, run.schedule_id) == (Trigger.EVENT, RunState.PENDING, None)
    assert json.loads(run.input)["data"] == {"repo": "api"}  # no template: the event itself
    assert event_route(store("github.push", {"repo": "web"}).id, now=NOW).outcome == RoutingOutcome.ROUTED
    assert len(runs_of(web_only)) == 1
    # An envelope ({type, data}: first-party, Standard Webhooks) is matched on its data.
    envelope = {"type": "github.push", "data": {"repo": "web"}}
    assert event_route(store("github.push", envelope).id, now=NOW).outcome == RoutingOutcome.ROUTED
    assert len(runs_of(web_only)) == 2
    # A prefix takes what is under it, not a type that merely starts with the same letters.
    assert event_route(store("githubx.push").id, now=NOW).outcome == RoutingOutcome.NO_MATCH


def test_an_event_that_matches_nothing_is_recorded_no_match(agent):
    subscribe(agent, "deploys", "deploy.finished", match={"data.env": "prod"})
    event = store("deploy.finished", {"env": "staging"})
    assert event_route(event.id, now=NOW).runs == []
    event.refresh_from_db()
    assert (event.outcome, event.routed_at, event.routing_error) == (RoutingOutcome.NO_MATCH, NOW, "")


def test_match_values_compare_as_json_types(agent):
    flagged = subscribe(agent, "flagged", "x.y", match={"data.flag": True, "data.count": 1})
    event_route(store("x.y", {"flag": 1, "count": 1}).id, now=NOW)  # 1 is not true
    event_route(store("x.y", {"flag": True, "count": 1.0}).id, now=NOW)
    assert len(runs_of(flagged)) == 1


def test_the_same_event_routed_twice_starts_one_run_per_subscription(agent):
    first, second = subscribe(agent, "one", "a.b"), subscribe(agent, "two", "a.*")
    event = store("a.b")
    assert len(event_route(event.id, now=NOW).runs) == 2
    again = event_route(event.id, now=NOW + timedelta(seconds=5))  # the task delivered again
    assert again.runs == [] and sorted(again.already) == [first.id, second.id]
    assert Run.objects.filter(trigger=Trigger.EVENT).count() == 2 and Route.objects.count() == 2


def test_editing_a_subscription_never_reruns_an_old_event(agent):
    subscription = subscribe(agent, "edited", "a.b", input_template="v1 {{event.id}}")
    event = store("a.b")
    event_route(event.id, now=NOW)
    Subscription.objects.filter(id=subscription.id).update(input_template="v2 {{event.id}}", version=2)
    assert event_route(event.id, now=NOW + timedelta(minutes=5)).runs == []
    assert [r.input for r in runs_of(subscription)] == [f"v1 {event.event_id}"]


def test_two_events_in_the_same_instant_are_two_runs(agent):
    subscription = subscribe(agent, "twins", "a.b")
    for event in (store("a.b"), store("a.b")):
        event_route(event.id, now=NOW)
    assert len(runs_of(subscription)) == 2


def test_the_template_reads_the_event(agent):
    subscription = subscribe(agent, "templated", "deploy.*",
                             input_template="{{event.type}} {{event.id}} {{event.subject}} {{event.data.app.name}} "
                                            "{{event.data.tags}} {{date}} {{subscription}} {{event.data.nope}}.")
    event = store("deploy.finished", {"app": {"name": "web"}, "tags": ["a", 1]}, subject="release 7")
    event_route(event.id, now=NOW)
    assert runs_of(subscription)[0].input == (f'deploy.finished {event.event_id} release 7 web ["a", 1] '
                                              f"2026-12-01 templated .")


def test_causation_travels_from_the_event_to_its_runs(agent):
    emitter = Agent.objects.create(name="emitter", adapter="echo")
    subscription = subscribe(agent, "chained", "a.b")
    parent = Run.objects.create(agent=emitter, trigger=Trigger.MANUAL, tick_at=NOW, idempotency_key="p",
                                chain_id="c" * 32)
    event = store("a.b", chain_id="c" * 32, depth=3, actor=emitter, parent_run=parent)
    event_route(event.id, now=NOW)
    run = runs_of(subscription)[0]
    assert (run.chain_id, run.event_depth, run.actor_id, run.parent_run_id) == ("c" * 32, 3, emitter.id, parent.id)
    # An event with no chain starts one, shared by every run it starts.
    first, second = subscribe(agent, "root-1", "root.x"), subscribe(agent, "root-2", "root.x")
    event_route(store("root.x").id, now=NOW)
    assert runs_of(first)[0].chain_id == runs_of(second)[0].chain_id != ""


def test_keyed_sessions_follow_the_key_and_a_missing_key_is_a_visible_error(agent):
    chat = subscribe(agent, "chat", "chat.message", session_mode="keyed", session_key="data.chat_id")
    for chat_id in (42, 42, 7):
        event_route(store("chat.message", {"chat_id": chat_id, "n": next(_ids)}).id, now=NOW)
    sessions = [r.session_id for r in runs_of(chat)]
    assert sessions[0] == sessions[1] != sessions[2] and all(sessions)
    assert {r.session_mode for r in runs_of(chat)} == {"persistent"}
    orphan = store("chat.message", {"text": "no chat id"})
    routed = event_route(orphan.id, now=NOW)
    orphan.refresh_from_db()
    assert routed.runs == [] and orphan.outcome == RoutingOutcome.FAILED
    assert "session key data.chat_id is missing" in orphan.routing_error and "chat" in orphan.routing_error
    assert not Route.objects.filter(event=orphan).exists()  # a replay after a fix can still route it


def test_a_subscriptions_own_agents_event_is_skipped_unless_self_trigger_is_allowed(agent):
    strict = subscribe(agent, "strict", "a.b")
    lenient = subscribe(agent, "lenient", "a.*", allow_self_trigger=True)
    event_route(store("a.b", actor=agent, depth=1).id, now=NOW)
    (refused,), (allowed,) = runs_of(strict), runs_of(lenient)
    assert (refused.state, refused.skip_reason) == (RunState.SKIPPED, SkipReason.SELF_TRIGGER)
    assert refused.finished_at == NOW and allowed.state == RunState.PENDING


def test_depth_above_the_workspace_limit_is_skipped(agent):
    Workspace.objects.filter(id=agent.workspace_id).update(event_depth_limit=2)
    subscription = subscribe(agent, "deep", "a.b")
    for depth in (2, 3):
        event_route(store("a.b", depth=depth).id, now=NOW)
    at_limit, beyond = runs_of(subscription)
    assert at_limit.state == RunState.PENDING
    assert (beyond.state, beyond.skip_reason, beyond.event_depth) == (RunState.SKIPPED, SkipReason.DEPTH_EXCEEDED, 3)


def test_an_identical_payload_within_the_debounce_window_is_skipped(agent):
    subscription = subscribe(agent, "debounced", "a.b", debounce_seconds=60)
    other = subscribe(agent, "separate", "a.b", debounce_seconds=60)
    for at in (NOW, NOW + timedelta(seconds=30), NOW + timedelta(seconds=91)):
        event_route(store("a.b", {"same": True}, at=at).id, now=at)
    states = [(r.state, r.skip_reason) for r in runs_of(subscription)]
    assert states == [(RunState.PENDING, ""), (RunState.SKIPPED, SkipReason.DUPLICATE_PAYLOAD),
                      (RunState.PENDING, "")]
    assert len(runs_of(other)) == 3 and runs_of(other)[1].skip_reason == SkipReason.DUPLICATE_PAYLOAD
    event_route(store("a.b", {"same": False}, at=NOW + timedelta(seconds=92)).id, now=NOW + timedelta(seconds=92))
    assert runs_of(subscription)[-1].state == RunState.PENDING  # another payload runs


def flood(subscription: Subscription, n: int, *, start: datetime) -> list[Run]:
    for i in range(n):
        event_route(store("flood.x").id, now=start + timedelta(seconds=i))
    return runs_of(subscription)


@pytest.mark.parametrize("counter", ["redis", "postgresql"])
def test_a_flood_trips_the_breaker_and_a_succeeded_probe_closes_it(agent, counter):
    redis_url = None if counter == "redis" else "redis://127.0.0.1:1/0"  # nothing listens: the ledger counts
    subscription = subscribe(agent, f"flood-{counter}", "flood.*", breaker_limit=3, breaker_window_seconds=60,
                             breaker_cooldown_seconds=120, debounce_seconds=0)
    with override_settings(TICKWISE=_tickwise(EVENTS_REDIS_URL=redis_url) if redis_url else _tickwise()):
        runs = flood(subscription, 6, start=NOW)
        assert [r.state for r in runs] == [RunState.PENDING] * 3 + [RunState.SKIPPED] * 3
        assert {r.skip_reason for r in runs[3:]} == {SkipReason.BREAKER_HELD}
        subscription.refresh_from_db()
        assert (subscription.breaker_state, subscription.held_at) == ("held", NOW + timedelta(seconds=3))
        # Raised once, by the match that tripped it; the held matches after it raise nothing more.
        alert = Alert.objects.get(kind="breaker_trip", key=f"subscription:{subscription.id}")
        assert alert.raised_count == 1 and "4 runs in 60s (limit 3)" in alert.detail
        # After the cool-down one probe runs; matches while it is in flight are still held.
        later = NOW + timedelta(seconds=200)
        probe, waiting = flood(subscription, 2, start=later)[-2:]
        assert (probe.state, waiting.skip_reason) == (RunState.PENDING, SkipReason.BREAKER_HELD)
        subscription.refresh_from_db()
        assert subscription.breaker_state == "probing"
        Run.objects.filter(id=probe.id).update(state=RunState.SUCCEEDED)
        events_route_stale(now=later + timedelta(seconds=5))  # the sweeper settles the probe
        subscription.refresh_from_db()
        assert subscription.breaker_state == "closed"
        assert flood(subscription, 1, start=later + timedelta(seconds=6))[-1].state == RunState.PENDING


def test_a_failed_probe_holds_the_breaker_again(agent):
    subscription = subscribe(agent, "flaky-flood", "flood.*", breaker_limit=1, breaker_window_seconds=60,
                             breaker_cooldown_seconds=10, debounce_seconds=0)
    flood(subscription, 2, start=NOW)
    probe = flood(subscription, 1, start=NOW + timedelta(seconds=20))[-1]
    Run.objects.filter(id=probe.id).update(state=RunState.FAILED)
    after = flood(subscription, 1, start=NOW + timedelta(seconds=25))[-1]
    subscription.refresh_from_db()
    assert after.skip_reason == SkipReason.BREAKER_HELD
    assert (subscription.breaker_state, subscription.held_at) == ("held", NOW + timedelta(seconds=25))


def test_the_sweeper_routes_events_left_pending(agent):
    subscription = subscribe(agent, "swept", "a.b")
    fresh, lost = store("a.b", at=NOW), store("a.b", at=NOW - timedelta(minutes=5))
    assert events_route_stale(now=NOW) == 1
    fresh.refresh_from_db(), lost.refresh_from_db()
    assert (fresh.outcome, lost.outcome) == (RoutingOutcome.PENDING, RoutingOutcome.ROUTED)
    assert len(runs_of(subscription)) == 1


def test_paused_and_deleted_subscriptions_take_nothing(agent):
    subscribe(agent, "paused", "a.b", paused=True)
    subscribe(agent, "gone", "a.b", deleted_at=NOW)
    retired = Agent.objects.create(name="retired", deleted_at=NOW)
    subscribe(retired, "orphaned", "a.b")
    assert event_route(store("a.b").id, now=NOW).outcome == RoutingOutcome.NO_MATCH


def _tickwise(**overrides: object) -> dict[str, object]:
    from django.conf import settings
    return {**settings.TICKWISE, **overrides}


def test_the_router_sweeper_is_a_beat_pulse_from_the_migrations():
    from django_celery_beat.models import PeriodicTask

    pulse = PeriodicTask.objects.get(task="events.sweep_unrouted")
    assert (pulse.interval.every, pulse.interval.period, pulse.enabled) == (30, "seconds", True)
