"""The agent's tools over the live API: run-token authentication, the schedule tool and its guardrails.

Runs are made in the ledger directly (the worker is not needed to hold a
token); tokens are minted by the same service the execute path uses.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from runs.models import Run, RunState, Trigger
from runs.services.tokens import run_token_mint
from schedules.models import Agent, CreatorKind, Schedule
from shells.api import api
from tests.shells.api.conftest import assert_problem
from triggers.tools import TOOLS
from workspaces.models import AuditEntry, Workspace

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 86400


def make_run(agent: Agent, *, trigger: str = Trigger.MANUAL, state: str = RunState.RUNNING,
             **fields: Any) -> Run:
    now = timezone.now()
    values: dict[str, Any] = {"agent": agent, "trigger": trigger, "tick_at": now, "state": state,
                              "idempotency_key": f"k{Run.objects.count()}-{now.timestamp()}",
                              "session_id": f"s{Run.objects.count()}", "chain_id": f"c{Run.objects.count()}",
                              **fields}
    return Run.objects.create(**values)


@pytest.fixture
def agent(transactional_db) -> Agent:
    space = Workspace.objects.create(slug="acme", name="Acme")
    return Agent.objects.create(name="scout", workspace=space)


class Tools:
    def __init__(self, http: httpx.Client, run: Run) -> None:
        self.http, self.run = http, run
        self.token = run_token_mint(run, now=timezone.now())

    def post(self, body: dict[str, Any], *, token: str | None = None, run_id: int | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post(f"/runs/{run_id or self.run.pk}/tools/schedule", json=body,
                              headers={"Tickwise-Run-Token": token or self.token, **(headers or {})})

    def create(self, **fields: Any) -> httpx.Response:
        body = {"action": "create", "payload": {"type": "task", "prompt": "check the deploy"},
                "reason": "the deploy takes a while", **fields}
        return self.post(body)


def test_a_token_works_only_for_its_own_run_and_only_while_the_run_lives(http, agent):
    mine, other = make_run(agent), make_run(agent)
    tools = Tools(http, mine)
    listing = {"action": "list"}
    assert tools.post(listing).status_code == 200
    assert_problem(tools.post(listing, run_id=other.pk), 401, "unauthenticated")
    assert_problem(http.post(f"/runs/{mine.pk}/tools/schedule", json=listing), 401, "unauthenticated")
    assert_problem(tools.post(listing, token="twr_forged"), 401, "unauthenticated")
    # Bearer works too; an API key never does here.
    ok = http.post(f"/runs/{mine.pk}/tools/schedule", json=listing, headers={"Authorization": f"Bearer {tools.token}"})
    assert ok.status_code == 200, ok.text
    # Ended within the grace period: still good; long ago: revoked.
    Run.objects.filter(pk=mine.pk).update(state=RunState.SUCCEEDED, finished_at=timezone.now())
    assert tools.post(listing).status_code == 200
    Run.objects.filter(pk=mine.pk).update(finished_at=timezone.now() - timedelta(seconds=61))
    assert "ended" in assert_problem(tools.post(listing), 401, "unauthenticated")["detail"]


def test_a_tampered_or_expired_token_is_refused(http, agent):
    mine, other = make_run(agent), make_run(agent)
    tools = Tools(http, mine)
    _, run_id, attempt, expires, signature = tools.token.split("_")
    forged = f"twr_{other.pk}_{attempt}_{expires}_{signature}"
    assert "unknown" in assert_problem(tools.post({"action": "list"}, token=forged, run_id=other.pk), 401,
                                       "unauthenticated")["detail"]
    stretched = f"twr_{run_id}_{attempt}_{int(expires) + 3600}_{signature}"
    assert_problem(tools.post({"action": "list"}, token=stretched), 401, "unauthenticated")
    expired = run_token_mint(mine, now=timezone.now() - timedelta(hours=1))
    assert "expired" in assert_problem(tools.post({"action": "list"}, token=expired), 401,
                                       "unauthenticated")["detail"]


def test_the_token_is_not_an_api_key(http, agent):
    tools = Tools(http, make_run(agent))
    response = http.get("/runs", headers={"Authorization": f"Bearer {tools.token}"})
    assert_problem(response, 401, "unauthenticated")


def test_a_wakeup_is_a_one_shot_in_the_run_session_with_its_origin_and_audit(http, agent):
    run = make_run(agent)
    response = Tools(http, run).create(in_seconds=300)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] and body["created"]
    schedule = Schedule.objects.get(pk=body["schedule"]["id"])
    assert schedule.kind == "once" and schedule.is_wakeup
    assert (schedule.creator_kind, schedule.origin_run_id, schedule.origin_agent_id) == (
        CreatorKind.AGENT_RUN, run.pk, agent.pk)
    assert (schedule.session_mode, schedule.session_id, schedule.origin_chain_id) == (
        "persistent", run.session_id, run.chain_id)
    assert schedule.reason == "the deploy takes a while" and schedule.input_template == "check the deploy"
    entry = AuditEntry.objects.get(object_type="schedule", object_id=schedule.pk, action="create")
    assert entry.source == "agent" and f"run {run.pk}" in entry.detail


def test_the_same_request_twice_makes_one_schedule(http, agent):
    tools = Tools(http, make_run(agent))
    first, second = tools.create(in_seconds=120), tools.create(in_seconds=120)
    assert first.json()["created"] and not second.json()["created"]
    assert first.json()["schedule"]["id"] == second.json()["schedule"]["id"]
    assert Schedule.objects.count() == 1
    # An Idempotency-Key names the request instead of its arguments.
    keyed = [tools.post({"action": "create", "in_seconds": 200, "reason": "r",
                         "payload": {"type": "message", "text": f"hi {n}"}}, headers={"Idempotency-Key": "one"})
             for n in range(2)]
    assert keyed[0].json()["schedule"]["id"] == keyed[1].json()["schedule"]["id"]
    assert Schedule.objects.count() == 2


def test_a_request_raced_by_its_retries_makes_one_schedule(api_url, agent):
    run = make_run(agent)
    token = run_token_mint(run, now=timezone.now())
    body = {"action": "create", "in_seconds": 300, "reason": "r", "payload": {"type": "task", "prompt": "p"}}
    start = threading.Barrier(6)

    def call(_: int) -> dict[str, Any]:
        with httpx.Client(base_url=api_url, timeout=30) as client:
            start.wait()
            response = client.post(f"/runs/{run.pk}/tools/schedule", json=body,
                                   headers={"Tickwise-Run-Token": token})
            assert response.status_code == 200, response.text
            return response.json()

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(call, range(6)))
    assert sum(answer["created"] for answer in answers) == 1
    assert len({answer["schedule"]["id"] for answer in answers}) == 1
    assert Schedule.objects.count() == 1


@pytest.mark.parametrize(("fields", "allowed"), [
    ({"in_seconds": 59}, False), ({"in_seconds": 60}, True),
    ({"in_seconds": 30 * DAY + 1}, False), ({"in_seconds": 30 * DAY - 1}, True),
    ({"every_seconds": 899}, False), ({"every_seconds": 900}, True),
    ({"cron": "*/10 * * * *"}, False), ({"cron": "*/15 * * * *"}, True),
])
def test_delays_and_intervals_are_refused_at_their_boundary(http, agent, fields, allowed):
    response = Tools(http, make_run(agent)).create(**fields)
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert_problem(response, 422, "quota-exceeded")
        assert not Schedule.objects.exists()


def test_an_agent_recurring_schedule_expires_unless_renewed(http, agent):
    response = Tools(http, make_run(agent)).create(every_seconds=3600)
    schedule = Schedule.objects.get(pk=response.json()["schedule"]["id"])
    assert schedule.end_at is not None
    assert timedelta(days=7) - timedelta(minutes=1) < schedule.end_at - schedule.created_at <= timedelta(days=7)
    # "Every hour" starts an hour from now, not now.
    assert schedule.next_fire_at is not None
    assert timedelta(minutes=59) < schedule.next_fire_at - schedule.created_at <= timedelta(hours=1)


@pytest.mark.parametrize("trigger", [Trigger.SCHEDULE, Trigger.EVENT, Trigger.WAKEUP, Trigger.RESUME])
def test_an_unattended_run_may_only_ask_for_wakeups(http, agent, trigger):
    tools = Tools(http, make_run(agent, trigger=trigger))
    problem = assert_problem(tools.create(every_seconds=3600), 422, "quota-exceeded")
    assert "one-shot" in problem["detail"]
    assert tools.create(in_seconds=600).status_code == 200


def test_quotas_per_session_and_per_agent_hold_at_their_boundary(http, agent):
    Workspace.objects.filter(pk=agent.workspace_id).update(agent_max_per_session=2, agent_max_per_agent=3)
    first = Tools(http, make_run(agent))
    assert [first.create(in_seconds=100 + n).status_code for n in range(2)] == [200, 200]
    assert "session" in assert_problem(first.create(in_seconds=300), 422, "quota-exceeded")["detail"]
    second = Tools(http, make_run(agent))
    assert second.create(in_seconds=100).status_code == 200
    assert "agent" in assert_problem(second.create(in_seconds=101), 422, "quota-exceeded")["detail"]
    # Cancelling one frees its place.
    mine = second.post({"action": "list"}).json()["schedules"]
    assert second.post({"action": "cancel", "id": mine[0]["id"]}).status_code == 200
    assert second.create(in_seconds=101).status_code == 200


def test_a_chain_wakes_itself_within_its_budget_only(http, agent):
    Workspace.objects.filter(pk=agent.workspace_id).update(chain_max_wakeups=5)
    assert Tools(http, make_run(agent, wakeup_count=4)).create(in_seconds=100).status_code == 200
    refused = Tools(http, make_run(agent, wakeup_count=5)).create(in_seconds=100)
    assert "wakeups" in assert_problem(refused, 422, "quota-exceeded")["detail"]


def test_the_chain_age_budget(http, agent):
    Workspace.objects.filter(pk=agent.workspace_id).update(chain_max_age_seconds=3600)
    young = make_run(agent)
    assert Tools(http, young).create(in_seconds=100).status_code == 200
    old = make_run(agent)
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=3601))
    old.refresh_from_db()
    assert_problem(Tools(http, old).create(in_seconds=100), 422, "quota-exceeded")


def test_cancel_reaches_only_what_this_agent_made(http, agent):
    tools = Tools(http, make_run(agent))
    made = tools.create(in_seconds=600).json()["schedule"]["id"]
    other_agent = Agent.objects.create(name="other", workspace_id=agent.workspace_id)
    stranger = Tools(http, make_run(other_agent))
    assert_problem(stranger.post({"action": "cancel", "id": made}), 404, "not-found")
    assert tools.post({"action": "cancel", "id": made}).json() == {"ok": True, "cancelled": made}
    assert Schedule.objects.get(pk=made).deleted_at is not None
    assert AuditEntry.objects.filter(object_id=made, action="delete", source="agent").exists()


def test_list_by_session_or_agent(http, agent):
    one, two = Tools(http, make_run(agent)), Tools(http, make_run(agent))
    one.create(in_seconds=600)
    two.create(in_seconds=700)
    assert len(one.post({"action": "list"}).json()["schedules"]) == 1
    assert len(one.post({"action": "list", "scope": "agent"}).json()["schedules"]) == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"action": "create", "in_seconds": 100, "at": "2030-01-01T00:00:00Z", "reason": "r",
      "payload": {"type": "task", "prompt": "p"}}, "exactly one of"),
    ({"action": "create", "in_seconds": 100, "payload": {"type": "task", "prompt": "p"}}, "reason"),
    ({"action": "create", "in_seconds": 100, "reason": "r", "payload": {"type": "message"}}, "text"),
    ({"action": "cancel"}, "id"),
    ({"action": "explode"}, "action"),
])
def test_bad_arguments_name_what_is_wrong(http, agent, body, field):
    problem = assert_problem(Tools(http, make_run(agent)).post(body), 422, "validation-error")
    assert field in problem["detail"]


def _resolved(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON Schema with every local $ref replaced by its definition (ninja and pydantic name them apart)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _resolved(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {key: _resolved(value, defs) for key, value in node.items() if key not in ("$defs", "title")}
    if isinstance(node, list):
        return [_resolved(item, defs) for item in node]
    return node


def test_the_function_tool_and_the_api_body_are_one_schema():
    document = api.get_openapi_schema()
    operation = document["paths"]["/api/v1/runs/{run}/tools/schedule"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    api_schema = _resolved(body, document["components"]["schemas"])
    parameters = TOOLS["schedule"].definition["function"]["parameters"]
    tool_schema = _resolved(parameters, parameters.get("$defs", {}))
    assert api_schema == tool_schema
    assert "poll" in TOOLS["schedule"].description


def test_a_background_run_starts_now_in_a_new_or_existing_session(make_caller, api_as):
    api_ = api_as(make_caller())
    api_.create_agent("scout")
    started = api_.post("/agents/scout/runs", json={"input": "build it", "completion_url": "https://example.com/h"})
    assert started.status_code == 202, started.text
    run = Run.objects.get(pk=started.json()["id"])
    assert (run.trigger, run.schedule_id, run.input, run.completion_url) == (
        Trigger.MANUAL, None, "build it", "https://example.com/h")
    again = api_.post("/agents/scout/runs", json={"input": "more", "session": run.session_id})
    assert Run.objects.get(pk=again.json()["id"]).session_id == run.session_id
    assert_problem(api_.post("/agents/scout/runs", json={"session": "nope"}), 409, "conflict")
    assert AuditEntry.objects.filter(action="background_run").count() == 2


def test_a_process_reported_exited_cancels_its_linked_schedules_in_its_workspace_only(make_caller, api_as, http):
    caller = make_caller()
    api_ = api_as(caller)
    owner = Agent.objects.create(name="scout", workspace=caller.workspace)
    tools = Tools(http, make_run(owner))
    linked = tools.create(in_seconds=600, process="deploy-42").json()["schedule"]["id"]
    unlinked = tools.create(in_seconds=700).json()["schedule"]["id"]
    outsider = api_as(make_caller(workspace="other"))
    assert outsider.post("/processes/deploy-42/exited", json={}).json()["cancelled"] == []
    answer = api_.post("/processes/deploy-42/exited", json={"status": "failed"})
    assert answer.status_code == 200 and answer.json() == {"handle": "deploy-42", "cancelled": [linked]}
    assert Schedule.objects.get(pk=linked).deleted_at is not None
    assert Schedule.objects.get(pk=unlinked).deleted_at is None
    entry = AuditEntry.objects.get(object_id=linked, action="delete")
    assert entry.detail == "process deploy-42 reported failed" and entry.source == "api"


def test_a_run_shows_its_chain_and_schedules_and_a_schedule_its_origin(make_caller, api_as, http):
    caller = make_caller()
    api_ = api_as(caller)
    owner = Agent.objects.create(name="scout", workspace=caller.workspace)
    parent = make_run(owner)
    child = make_run(owner, chain_id=parent.chain_id, parent_run=parent, wakeup_count=1)
    made = Tools(http, parent).create(every_seconds=3600).json()["schedule"]
    chain = api_.get(f"/runs/{child.pk}/chain").json()
    assert [r["id"] for r in chain["runs"]] == [parent.pk, child.pk]
    assert chain["runs"][1]["parent_run"] == parent.pk and chain["wakeup_count"] == 1
    assert [s["id"] for s in api_.get(f"/runs/{parent.pk}/chain").json()["schedules_created"]] == [made["id"]]
    origin = api_.get(f"/agents/scout/schedules/{made['id']}/origin").json()
    assert (origin["creator_kind"], origin["origin_run"], origin["origin_agent"]) == ("agent_run", parent.pk, "scout")
    by_key = api_.create_schedule("scout", "nightly")
    origin = api_.get(f"/agents/scout/schedules/{by_key['id']}/origin").json()
    assert (origin["creator_kind"], origin["created_by_key"]) == ("api_key", caller.key_id)


def test_a_person_renews_an_agent_recurring_schedule(make_caller, api_as, http):
    caller = make_caller()
    owner = Agent.objects.create(name="scout", workspace=caller.workspace)
    made = Tools(http, make_run(owner)).create(every_seconds=3600).json()["schedule"]["id"]
    Schedule.objects.filter(pk=made).update(end_at=timezone.now() + timedelta(hours=1))
    renewed = api_as(caller).post(f"/agents/scout/schedules/{made}/renew")
    assert renewed.status_code == 200, renewed.text
    assert Schedule.objects.get(pk=made).end_at > timezone.now() + timedelta(days=6)
    assert_problem(api_as(make_caller(role="operator")).post(f"/agents/scout/schedules/{made}/renew"), 403,
                   "forbidden")
