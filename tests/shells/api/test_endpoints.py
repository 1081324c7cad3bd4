"""Every endpoint of /api/v1 through a real gunicorn on loopback: the happy path and its documented errors."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.utils import timezone

from runs.models import Run, RunState
from schedules.models import Schedule
from tests.shells.api.conftest import Api, assert_problem, field_names, start_api
from workspaces.models import AuditEntry

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def admin(make_caller, api_as) -> Api:
    return api_as(make_caller("admin"))


def wait_run(api: Api, run_id: int, waiter, *, states: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        body = api.get(f"/runs/{run_id}").json()
        return body if body["state"] in states else None
    return waiter(reached, timeout=timeout, what=f"run {run_id} to reach {states}")


# --- agents -------------------------------------------------------------------------


def test_agent_crud_with_versions(admin):
    created = admin.post("/agents", json={"name": "scout", "config": {"sleep": 0}})
    assert created.status_code == 201, created.text
    agent = created.json()
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/api/v1/agents/{agent['id']}"
    assert agent | {"id": 0, "created_at": "", "updated_at": ""} == {
        "id": 0, "name": "scout", "workspace": "acme", "adapter": "echo", "config": {"sleep": 0},
        "is_active": True, "version": 1, "created_at": "", "updated_at": ""}

    by_name, by_id = admin.get("/agents/scout"), admin.get(f"/agents/{agent['id']}")
    assert by_name.json() == by_id.json() == agent
    assert by_name.headers["ETag"] == '"1"'
    unchanged = admin.get("/agents/scout", headers={"If-None-Match": '"1"'})
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == '"1"' and not unchanged.content
    assert [a["name"] for a in admin.get("/agents").json()["items"]] == ["scout"]

    assert_problem(admin.patch("/agents/scout", json={"is_active": False}), 428, "precondition-required")
    assert_problem(admin.patch("/agents/scout", json={"is_active": False}, headers={"If-Match": "1"}),
                   412, "version-mismatch")  # not a strong ETag
    changed = admin.patch("/agents/scout", json={"is_active": False}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert changed.json()["is_active"] is False and changed.headers["ETag"] == '"2"'
    stale = assert_problem(admin.patch("/agents/scout", json={"is_active": True}, headers={"If-Match": '"1"'}),
                           412, "version-mismatch")
    assert stale["current_version"] == 2
    assert admin.get("/agents/scout", headers={"If-None-Match": '"1"'}).status_code == 200

    assert_problem(admin.delete("/agents/scout"), 428, "precondition-required")
    assert_problem(admin.delete("/agents/scout", headers={"If-Match": '"1"'}), 412, "version-mismatch")
    assert admin.delete("/agents/scout", headers={"If-Match": '"2"'}).status_code == 204
    assert_problem(admin.get("/agents/scout"), 404, "not-found")
    assert admin.get("/agents").json()["items"] == []
    assert admin.create_agent("scout")["id"] != agent["id"]  # the name is free again


def test_agent_refusals_are_field_errors(admin):
    admin.create_agent("scout")
    duplicate = assert_problem(admin.post("/agents", json={"name": "scout"}), 422, "validation-error")
    assert duplicate["errors"], duplicate
    bad_name = assert_problem(admin.post("/agents", json={"name": "no spaces"}), 422, "validation-error")
    assert field_names(bad_name) == {"name"}
    extra = assert_problem(admin.post("/agents", json={"name": "x", "colour": "red"}), 422, "validation-error")
    flag = assert_problem(admin.post("/agents", json={"name": "x", "is_active": 0}), 422, "validation-error")
    assert field_names(flag) == {"is_active"}  # 0 is not false
    assert field_names(extra) == {"colour"}
    bad_config = assert_problem(admin.post("/agents", json={"name": "web", "adapter": "http", "config": {}}),
                                422, "validation-error")
    assert field_names(bad_config) == {"config"}
    not_json = admin.post("/agents", content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code in (400, 422)
    assert_problem(not_json, not_json.status_code, "validation-error")
    assert [a["name"] for a in admin.get("/agents").json()["items"]] == ["scout"]


def test_errors_outside_the_operations_are_problems_too(admin):
    admin.create_agent("scout")
    for method, url in [("PUT", "/agents/scout"), ("POST", "/agents/scout"), ("DELETE", "/runs/1"),
                        ("GET", "/runs/1/cancel")]:
        refused = assert_problem(admin.request(method, url), 405, "method-not-allowed")
        assert method in refused["detail"], refused
    allow = admin.request("PUT", "/agents/scout").headers["Allow"]
    assert {m.strip() for m in allow.split(",")} == {"GET", "PATCH", "DELETE"}
    for url in ("/nothing", "/agents/", "/agents/scout/schedules/nightly/nonsense"):
        assert_problem(admin.get(url), 404, "not-found")
    assert_problem(admin.client.post("/nothing"), 404, "not-found")  # no key, no CSRF cookie: still the problem


# --- schedules ----------------------------------------------------------------------


def test_schedule_crud_with_versions(admin):
    admin.create_agent("scout")
    created = admin.post("/agents/scout/schedules", json={"name": "nightly", "cron": "0 3 * * *",
                                                           "timezone": "Europe/Paris"})
    assert created.status_code == 201, created.text
    schedule = created.json()
    url = f"/agents/scout/schedules/{schedule['id']}"
    assert created.headers["Location"] == f"/api/v1/agents/{admin.get('/agents/scout').json()['id']}" \
                                          f"/schedules/{schedule['id']}"
    assert created.headers["ETag"] == '"1"'
    assert schedule["state"] == "active" and schedule["kind"] == "cron" and schedule["timezone"] == "Europe/Paris"
    assert schedule["created_by"] == admin.caller.username and schedule["agent"] == "scout"
    assert schedule["next_tick_at"] is not None
    assert datetime.fromisoformat(schedule["next_tick_at"]).astimezone(ZoneInfo("Europe/Paris")).hour == 3

    assert admin.get("/agents/scout/schedules/nightly").json() == admin.get(url).json() == schedule
    assert admin.get(url, headers={"If-None-Match": '"1"'}).status_code == 304
    assert admin.get(url, headers={"If-None-Match": '"7", "1"'}).status_code == 304
    listed = admin.get("/agents/scout/schedules").json()
    assert [s["name"] for s in listed["items"]] == ["nightly"] and listed["next_cursor"] is None

    assert_problem(admin.patch(url, json={"cron": "0 4 * * *"}), 428, "precondition-required")
    changed = admin.patch(url, json={"cron": "0 4 * * *"}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == '"2"' and changed.json()["cron"] == "0 4 * * *"
    assert changed.json()["version"] == 2
    assert datetime.fromisoformat(changed.json()["next_tick_at"]).astimezone(ZoneInfo("Europe/Paris")).hour == 4
    stale = assert_problem(admin.patch(url, json={"cron": "0 5 * * *"}, headers={"If-Match": '"1"'}),
                           412, "version-mismatch")
    assert stale["current_version"] == 2
    assert admin.get(url).json()["cron"] == "0 4 * * *"
    cleared = admin.patch(url, json={"timezone": None}, headers={"If-Match": '"2"'})
    assert cleared.status_code == 200 and cleared.json()["timezone"] == "UTC", cleared.text

    assert_problem(admin.delete(url), 428, "precondition-required")
    assert_problem(admin.delete(url, headers={"If-Match": '"2"'}), 412, "version-mismatch")
    assert admin.delete(url, headers={"If-Match": '"3"'}).status_code == 204
    assert_problem(admin.get(url), 404, "not-found")
    assert admin.get("/agents/scout/schedules").json()["items"] == []
    assert_problem(admin.get("/agents/nobody/schedules"), 404, "not-found")


def test_pause_and_resume(admin):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    url = "/agents/scout/schedules/nightly"
    assert_problem(admin.post(f"{url}/pause", json={"reason": "maintenance"}), 428, "precondition-required")
    paused = admin.post(f"{url}/pause", json={"reason": "maintenance"}, headers={"If-Match": '"1"'})
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] == "paused" and paused.json()["paused"] is True
    assert paused.json()["paused_reason"] == "maintenance" and paused.headers["ETag"] == '"2"'
    assert admin.get(url).json()["paused_reason"] == "maintenance"
    assert_problem(admin.post(f"{url}/resume", headers={"If-Match": '"1"'}), 412, "version-mismatch")
    resumed = admin.post(f"{url}/resume", headers={"If-Match": '"2"'})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == "active" and resumed.json()["paused_reason"] == ""
    assert resumed.headers["ETag"] == '"3"' and resumed.json()["next_tick_at"] is not None
    nul = assert_problem(admin.post(f"{url}/pause", json={"reason": "a\x00b"}, headers={"If-Match": '"3"'}),
                         422, "validation-error")
    assert field_names(nul) == {"reason"} and "NUL" in nul["detail"]
    too_long = assert_problem(admin.post(f"{url}/pause", json={"reason": "x" * 201}, headers={"If-Match": '"3"'}),
                              422, "validation-error")
    assert field_names(too_long) == {"reason"}


def test_trigger_publishes_within_the_request_and_a_worker_runs_it(admin, stack, waiter):
    """202 with the run; by the time the answer arrives the run is committed and its message sent."""
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly", input_template="report for {{date}}")
    answer = admin.post("/agents/scout/schedules/nightly/trigger", json={"input": "right now"})
    assert answer.status_code == 202, answer.text
    run = answer.json()
    assert answer.headers["Location"] == f"/api/v1/runs/{run['id']}"
    assert run["state"] == "pending" and run["trigger"] == "manual" and run["input"] == "right now"
    assert run["started_by"] == admin.caller.username and run["schedule"] == "nightly"
    stored = Run.objects.get(pk=run["id"])  # another connection: committed, not just inside the request
    assert stored.published_at is not None, "the run's execute message was not sent within the request"

    stack.worker()  # started after the answer: the message must already be on the queue
    done = wait_run(admin, run["id"], waiter, states=("succeeded", "failed", "dead"))
    assert done["state"] == "succeeded", done
    assert done["output"]["echo"] == "right now"
    assert [(a["attempt"], a["state"]) for a in done["attempts"]] == [(1, "succeeded")]
    assert done["attempts"][0]["finished_at"] is not None
    listed = admin.get("/agents/scout/schedules/nightly/runs").json()["items"]
    assert [r["id"] for r in listed] == [run["id"]]


def test_trigger_of_an_inactive_agent_is_a_conflict(admin):
    admin.create_agent("scout", is_active=False)
    admin.create_schedule("scout", "nightly")
    refused = assert_problem(admin.post("/agents/scout/schedules/nightly/trigger", json={}), 409, "conflict")
    assert "inactive" in refused["detail"]
    assert admin.get("/runs").json()["items"] == []


def test_trigger_body_is_checked(admin):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    unknown = assert_problem(admin.post("/agents/scout/schedules/nightly/trigger", json={"inptu": "x"}),
                             422, "validation-error")
    assert field_names(unknown) == {"inptu"}
    surrogate = assert_problem(admin.post("/agents/scout/schedules/nightly/trigger",
                                          content=b'{"input": "\\ud800"}',
                                          headers={"Content-Type": "application/json"}), 422, "validation-error")
    assert field_names(surrogate) == {"input"}
    assert admin.get("/runs").json()["items"] == []
    assert_problem(admin.post("/agents/scout/schedules/missing/trigger", json={}), 404, "not-found")


# --- runs ---------------------------------------------------------------------------


def test_cancel_a_pending_run(admin):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    run = admin.trigger("scout", "nightly")  # no worker: it stays pending
    cancelled = admin.post(f"/runs/{run['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled" and cancelled.json()["finished_at"] is not None
    assert admin.get(f"/runs/{run['id']}").json()["state"] == "cancelled"
    again = assert_problem(admin.post(f"/runs/{run['id']}/cancel"), 409, "conflict")
    assert "cancelled" in again["detail"]
    assert_problem(admin.post("/runs/999999/cancel"), 404, "not-found")
    assert_problem(admin.get("/runs/not-a-number"), 404, "not-found")


def _cancel_while_running(admin: Api, waiter, schedule: str) -> dict[str, Any]:
    run = admin.trigger("sleeper", schedule)
    wait_run(admin, run["id"], waiter, states=("running",))
    asked = admin.post(f"/runs/{run['id']}/cancel")
    assert asked.status_code == 200, asked.text
    assert asked.json()["state"] == "running"  # cooperative: the attempt is asked, not killed
    assert Run.objects.get(pk=run["id"]).cancel_requested_at is not None
    assert admin.post(f"/runs/{run['id']}/cancel").status_code == 200  # asking twice is still one request
    assert AuditEntry.objects.filter(object_type="run", object_id=run["id"], action="cancel").count() >= 1
    return wait_run(admin, run["id"], waiter, states=("succeeded", "cancelled", "failed", "dead"))


def test_cancel_a_running_run_is_recorded_by_the_worker(admin, stack, waiter):
    """A running attempt is asked to stop; the worker running it records ``cancelled``.

    With the default policies the attempt may not hear the request before the
    five-second echo ends; it is recorded cancelled all the same.
    """
    admin.create_agent("sleeper", config={"sleep": 5})
    admin.create_schedule("sleeper", "slow")
    stack.worker()
    assert _cancel_while_running(admin, waiter, "slow")["state"] == "cancelled"


def test_replay_a_dead_run_and_refuse_the_others(admin, stack, waiter):
    admin.create_agent("flaky", config={"fail": "transient"})
    admin.create_schedule("flaky", "nightly", max_attempts=1)
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    pending = admin.trigger("scout", "nightly")
    assert_problem(admin.post(f"/runs/{pending['id']}/replay"), 409, "conflict")

    stack.worker()
    dead = wait_run(admin, admin.trigger("flaky", "nightly")["id"], waiter, states=("dead", "failed", "succeeded"))
    assert dead["state"] == "dead", dead
    replayed = admin.post(f"/runs/{dead['id']}/replay")
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["id"] == dead["id"] and replayed.json()["state"] in ("pending", "running", "dead")
    again = waiter(lambda: (lambda b: b if len(b["attempts"]) == 2 and b["state"] == "dead" else None)(
        admin.get(f"/runs/{dead['id']}").json()), timeout=60, what="the replayed run to end dead again")
    assert [a["attempt"] for a in again["attempts"]] == [1, 2]

    succeeded = wait_run(admin, pending["id"], waiter, states=("succeeded",))
    refused = assert_problem(admin.post(f"/runs/{succeeded['id']}/replay"), 409, "conflict")
    assert "succeeded" in refused["detail"]


def test_runs_list_filters_and_detail(admin):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    admin.create_agent("other")
    admin.create_schedule("other", "hourly", cron="0 * * * *")
    first = admin.trigger("scout", "nightly")
    second = admin.trigger("other", "hourly")
    admin.post(f"/runs/{first['id']}/cancel")
    everything = admin.get("/runs").json()["items"]
    assert [r["id"] for r in everything] == [second["id"], first["id"]]
    assert [r["id"] for r in admin.get("/runs", params={"state": "cancelled"}).json()["items"]] == [first["id"]]
    assert [r["id"] for r in admin.get("/runs", params={"state": "pending"}).json()["items"]] == [second["id"]]
    assert [r["id"] for r in admin.get("/runs", params={"agent": "other"}).json()["items"]] == [second["id"]]
    assert len(admin.get("/runs", params={"trigger": "manual"}).json()["items"]) == 2
    assert admin.get("/runs", params={"trigger": "schedule"}).json()["items"] == []
    bad = assert_problem(admin.get("/runs", params={"state": "sleeping"}), 422, "validation-error")
    assert field_names(bad) == {"state"}
    scoped = admin.get("/agents/scout/schedules/nightly/runs", params={"state": "cancelled"}).json()["items"]
    assert [r["id"] for r in scoped] == [first["id"]]
    assert_problem(admin.get("/agents/scout/schedules/nightly/runs", params={"state": "sleeping"}), 422,
                   "validation-error")
    nul = assert_problem(admin.get("/runs", params={"agent": "sc\x00out"}), 422, "validation-error")
    assert field_names(nul) == {"agent"}
    detail = admin.get(f"/runs/{second['id']}").json()
    assert detail["attempts"] == [] and detail["agent"] == "other" and detail["schedule"] == "hourly"


def test_schedule_state_filter(admin):
    admin.create_agent("scout")
    for name in ("a", "b", "c"):
        admin.create_schedule("scout", name)
    admin.post("/agents/scout/schedules/b/pause", json={}, headers={"If-Match": '"1"'})
    soon = timezone.now() + timedelta(seconds=2)
    admin.create_schedule("scout", "once", kind="once", cron="", run_at=soon.isoformat())
    # A one-shot whose instant passed is finished when the beat (here: a re-plan) reaches it.
    schedule = Schedule.objects.get(name="once")
    Schedule.objects.filter(pk=schedule.pk).update(finished_reason="run_at_passed", finished_at=soon,
                                                   next_tick_at=None, next_fire_at=None)

    def names(state: str) -> list[str]:
        response = admin.get("/agents/scout/schedules", params={"state": state})
        assert response.status_code == 200, response.text
        return [s["name"] for s in response.json()["items"]]
    assert names("active") == ["a", "c"]
    assert names("paused") == ["b"]
    assert names("finished") == ["once"]
    assert admin.get("/agents/scout/schedules/once").json()["state"] == "finished"
    assert_problem(admin.get("/agents/scout/schedules", params={"state": "asleep"}), 422, "validation-error")


def test_cursor_pagination_neither_repeats_nor_skips(admin):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    made = [admin.trigger("scout", "nightly")["id"] for _ in range(11)]
    seen: list[int] = []
    page = admin.get("/runs", params={"limit": 4}).json()
    seen += [r["id"] for r in page["items"]]
    late = admin.trigger("scout", "nightly")["id"]  # inserted while the client pages
    while page["next_cursor"]:
        page = admin.get("/runs", params={"limit": 4, "cursor": page["next_cursor"]}).json()
        seen += [r["id"] for r in page["items"]]
    assert seen == sorted(made, reverse=True)  # newest first, each once, none missing
    assert late not in seen
    assert [r["id"] for r in admin.get("/runs", params={"limit": 200}).json()["items"]][0] == late

    for name in ("b", "c", "d", "e"):
        admin.create_agent(name)
    agents: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = admin.get("/agents", params=params).json()
        agents += [a["name"] for a in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert agents == ["scout", "b", "c", "d", "e"]  # oldest first, by id

    for bad in ("%%%", "bm90LWEtbnVtYmVy", "LTE", "MTI" * 30):  # not base64; "not-a-number"; "-1"; too long
        problem = assert_problem(admin.get("/runs", params={"cursor": bad}), 422, "validation-error")
        assert field_names(problem) == {"cursor"}
    assert_problem(admin.get("/runs", params={"limit": 0}), 422, "validation-error")
    assert_problem(admin.get("/runs", params={"limit": 201}), 422, "validation-error")


# --- preview, stats, audit ----------------------------------------------------------


def _next_spring_forward(after: datetime) -> date:
    """The next day 02:30 does not exist in New York, at least three days after ``after``."""
    day = (after + timedelta(days=3)).date()
    while True:
        wall = datetime(day.year, day.month, day.day, 2, 30, tzinfo=NEW_YORK)
        if wall.astimezone(UTC).astimezone(NEW_YORK).replace(tzinfo=None) != wall.replace(tzinfo=None):
            return day
        day += timedelta(days=1)


def test_preview_notes_the_dst_gap(admin):
    gap_day = _next_spring_forward(timezone.now())  # 2027-03-14 as this is written
    start = datetime(gap_day.year, gap_day.month, gap_day.day, tzinfo=UTC) - timedelta(days=2)
    admin.create_agent("scout")
    admin.create_schedule("scout", "early", cron="30 2 * * *", timezone="America/New_York",
                          start_at=start.isoformat())
    preview = admin.get("/agents/scout/schedules/early/preview", params={"count": 4})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["timezone"] == "America/New_York"
    by_day = {datetime.fromisoformat(f["local"]).date(): f for f in body["fires"]}
    assert len(body["fires"]) == 4
    gap = by_day[gap_day]
    assert gap["runs"] is False and gap["note"] == "dst_gap_skipped", gap
    others = [f for day, f in by_day.items() if day != gap_day]
    assert all(f["runs"] and f["note"] == "" and f["local"][11:16] == "02:30" for f in others), others
    assert_problem(admin.get("/agents/scout/schedules/early/preview", params={"count": 0}), 422,
                   "validation-error")


def _ledger_row(schedule: Schedule, state: str, *, age: timedelta, **fields: Any) -> Run:
    now = timezone.now()
    return Run.objects.create(schedule=schedule, agent=schedule.agent, trigger="schedule", tick_at=now - age,
                              state=state, idempotency_key=uuid.uuid4().hex, started_at=now - age,
                              finished_at=now - age + timedelta(seconds=2), **fields)


def test_stats_success_rate_excludes_skipped_and_cancelled(admin):
    admin.create_agent("scout")
    made = admin.create_schedule("scout", "nightly")
    schedule = Schedule.objects.get(pk=made["id"])
    for minutes in (1, 2, 3):
        _ledger_row(schedule, RunState.SUCCEEDED, age=timedelta(minutes=minutes))
    _ledger_row(schedule, RunState.FAILED, age=timedelta(minutes=4), error_category="agent_error")
    _ledger_row(schedule, RunState.DEAD, age=timedelta(minutes=5), error_category="timeout")
    _ledger_row(schedule, RunState.UNKNOWN, age=timedelta(minutes=6), error_category="crashed")
    for minutes in (7, 8):
        _ledger_row(schedule, RunState.SKIPPED, age=timedelta(minutes=minutes), skip_reason="overlap")
    _ledger_row(schedule, RunState.CANCELLED, age=timedelta(minutes=9))
    _ledger_row(schedule, RunState.FAILED, age=timedelta(days=2), error_category="agent_error")  # outside 24h

    stats = admin.get("/agents/scout/schedules/nightly/stats", params={"window": "24h"})
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["window"] == "24h"
    assert body["totals"] == {"pending": 0, "running": 0, "succeeded": 3, "failed": 1, "dead": 1,
                              "cancelled": 1, "unknown": 1, "skipped": 2, "waiting": 0}
    assert body["success_rate"] == 0.5  # 3 / (3 + 1 + 1 + 1)
    assert body["failures_by_category"] == {"agent_error": 1, "timeout": 1, "crashed": 1}
    assert body["duration"]["p50_ms"] == pytest.approx(2000)
    assert body["next_tick_at"] == made["next_tick_at"]
    week = admin.get("/agents/scout/schedules/nightly/stats", params={"window": "7d"}).json()
    assert week["totals"]["failed"] == 2 and week["success_rate"] == round(3 / 7, 4)
    assert_problem(admin.get("/agents/scout/schedules/nightly/stats", params={"window": "2h"}), 422,
                   "validation-error")


def test_stats_without_rated_runs_has_no_rate(admin):
    admin.create_agent("scout")
    made = admin.create_schedule("scout", "nightly")
    _ledger_row(Schedule.objects.get(pk=made["id"]), RunState.SKIPPED, age=timedelta(minutes=1),
                skip_reason="paused")
    body = admin.get("/agents/scout/schedules/nightly/stats").json()
    assert body["success_rate"] is None and body["totals"]["skipped"] == 1


def test_audit_trail_of_a_schedule(admin):
    admin.create_agent("scout")
    made = admin.create_schedule("scout", "nightly")
    url = "/agents/scout/schedules/nightly"
    assert admin.patch(url, json={"cron": "0 4 * * *"}, headers={"If-Match": '"1"'}).status_code == 200
    assert admin.post(f"{url}/pause", json={"reason": "holiday"}, headers={"If-Match": '"2"'}).status_code == 200
    assert admin.post(f"{url}/resume", headers={"If-Match": '"3"'}).status_code == 200
    run = admin.trigger("scout", "nightly")

    audit = admin.get(f"{url}/audit")
    assert audit.status_code == 200, audit.text
    entries = audit.json()
    assert [(e["action"], e["version_before"], e["version_after"]) for e in entries] == [
        ("run_now", 4, 4), ("resume", 3, 4), ("pause", 2, 3), ("update", 1, 2), ("create", None, 1)]
    assert all(e["source"] == "api" and e["user"] == admin.caller.username for e in entries)
    assert all(e["api_key"].startswith("tw_") and e["api_key"].endswith("_…") for e in entries)
    assert admin.caller.token not in audit.text
    update, create = entries[3], entries[4]
    assert update["changes"] == {"cron": ["0 3 * * *", "0 4 * * *"]}
    assert create["changes"]["cron"] == [None, "0 3 * * *"] and create["changes"]["name"] == [None, "nightly"]
    assert entries[2]["detail"] == "holiday" and entries[0]["detail"] == f"run {run['id']}"

    assert admin.delete(url, headers={"If-Match": '"4"'}).status_code == 204
    deleted = AuditEntry.objects.get(object_type="schedule", object_id=made["id"], action="delete")
    assert (deleted.version_before, deleted.version_after, deleted.source) == (4, 5, "api")
    assert deleted.user_id == admin.caller.user_id and deleted.api_key_id == admin.caller.key_id
    assert_problem(admin.get(f"{url}/audit"), 404, "not-found")  # gone with its schedule


def test_a_schedule_stored_before_its_zone_was_refused(admin):
    """Reads and actions on a definition the engine now refuses answer with a problem; a PATCH repairs it."""
    admin.create_agent("scout")
    made = admin.create_schedule("scout", "nightly")
    Schedule.objects.filter(pk=made["id"]).update(timezone="EST")  # saved when EST was still allowed
    url = "/agents/scout/schedules/nightly"
    assert admin.get(url).json()["timezone"] == "EST"
    assert admin.get(f"{url}/stats").status_code == 200
    for refused in (admin.get(f"{url}/preview"), admin.post(f"{url}/resume", headers={"If-Match": '"1"'})):
        assert "EST" in assert_problem(refused, 409, "conflict")["detail"]
    bad_zone = assert_problem(admin.patch(url, json={"name": "renamed"}, headers={"If-Match": '"1"'}), 422,
                              "validation-error")
    assert field_names(bad_zone) == {"timezone"}
    fixed = admin.patch(url, json={"timezone": "America/New_York"}, headers={"If-Match": '"1"'})
    assert fixed.status_code == 200, fixed.text
    assert admin.get(f"{url}/preview").status_code == 200


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "every day"}, "cron"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "EST"}, "timezone"),
    ({"input_template": "hello {{nobody}}"}, "input_template"),
    ({"kind": "once", "cron": "", "run_at": "2001-01-01T00:00:00Z"}, "run_at"),
    ({"kind": "interval", "cron": "", "interval_seconds": 0}, "interval_seconds"),
    ({"start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"}, "end_at"),
    ({"max_attempts": 101}, "max_attempts"),
    ({"missed_policy": "sometimes"}, "missed_policy"),
    ({"run_at": "not a date"}, "run_at"),
    ({"jitter_seconds": -1}, "jitter_seconds"),
    ({"shape": "round"}, "shape"),
    ({"max_runs": "5"}, "max_runs"),  # numbers are not coerced from strings
    ({"max_runs": 5.0}, "max_runs"),
    ({"kind": "once", "cron": "", "run_at": 4102444800}, "run_at"),  # 2100-01-01 as a Unix number
    ({"start_at": "2030-01-01"}, "start_at"),  # a date is not an instant
])
def test_schedule_validation_errors_name_the_field(admin, fields, field):
    admin.create_agent("scout")
    body = {"name": "nightly", "cron": "0 3 * * *", **fields}
    problem = assert_problem(admin.post("/agents/scout/schedules", json=body), 422, "validation-error")
    assert field in field_names(problem), problem
    assert field in problem["detail"]
    assert admin.get("/agents/scout/schedules").json()["items"] == []


def test_a_refused_patch_changes_nothing(admin):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    url = "/agents/scout/schedules/nightly"
    problem = assert_problem(admin.patch(url, json={"cron": "0 25 * * *"}, headers={"If-Match": '"1"'}),
                             422, "validation-error")
    assert field_names(problem) == {"cron"}
    past = assert_problem(admin.patch(url, json={"kind": "once", "cron": None, "run_at": "2001-01-01T00:00:00Z"},
                                      headers={"If-Match": '"1"'}), 422, "validation-error")
    assert field_names(past) == {"run_at"}
    after = admin.get(url)
    assert after.headers["ETag"] == '"1"' and after.json()["cron"] == "0 3 * * *"


# --- the deployment switches ------------------------------------------------------------


DISABLED_READS = ["/api/v1/openapi.json", "/api/v1/docs", "/api/v1/agents", "/api/v1/agents/a/schedules/b",
                  "/api/v1/runs/1", "/api/", "/api/v2/anything"]
DISABLED_WRITES = [("POST", "/api/v1/agents"), ("PATCH", "/api/v1/agents/1"), ("DELETE", "/api/v1/agents/1"),
                   ("POST", "/api/v1/agents/a/schedules/b/trigger"), ("POST", "/api/v1/runs/1/cancel")]


@pytest.fixture
def disabled_api(stack) -> Iterator[httpx.Client]:
    base = start_api(stack, "gunicorn-disabled", extra_env={"TICKWISE_API_ENABLED": "false"})
    with httpx.Client(base_url=base.removesuffix("/api/v1"), timeout=30,
                      headers={"Authorization": "Bearer tw_x_y"}) as client:
        yield client


def test_api_disabled_answers_404_for_every_api_route(disabled_api):
    for path in DISABLED_READS:
        body = assert_problem(disabled_api.get(path), 404, "feature-disabled")
        assert "TICKWISE_API_ENABLED" in body["detail"], path
    assert disabled_api.get("/admin/login/").status_code == 200  # only the API is off
    for method, path in DISABLED_WRITES:
        assert_problem(disabled_api.request(method, path, json={}), 404, "feature-disabled")


def test_etag_stays_strong_under_gzip(admin):
    """A weak ETag (GZipMiddleware's W/ prefix) would never match If-Match, so writes would be refused."""
    admin.create_agent("scout", config={"text": "x" * 2000})
    admin.create_schedule("scout", "nightly", input_template="y" * 2000)
    for url in ("/agents/scout", "/agents/scout/schedules/nightly"):
        response = admin.get(url, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers["ETag"] == '"1"', response.headers
    tag = admin.get("/agents/scout", headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    written = admin.patch("/agents/scout", json={"is_active": False},
                          headers={"If-Match": tag, "Accept-Encoding": "gzip"})
    assert written.status_code == 200 and written.headers["ETag"] == '"2"', written.text
