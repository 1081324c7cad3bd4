"""Concurrent clients over real HTTP: one winner per version, one run per Idempotency-Key.

Each racer has its own connection and waits at a barrier, so the requests
reach gunicorn's two worker processes together; the database decides.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from runs.models import Run
from schedules.models import Agent
from tests.shells.api.conftest import Api, assert_problem
from workspaces.models import AuditEntry, Role

ROUNDS = 4


@pytest.fixture
def admin(make_caller, api_as) -> Api:
    return api_as(make_caller(Role.ADMIN))


def race(api_url: str, requests: list[Callable[[httpx.Client], httpx.Response]]) -> list[httpx.Response]:
    """Send ``requests`` at once, each on its own connection; their responses, in order."""
    start = threading.Barrier(len(requests))

    def send(request: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
        with httpx.Client(base_url=api_url, timeout=60) as client:
            client.get("/openapi.json")  # connect first: the barrier then releases requests, not handshakes
            start.wait(timeout=60)
            return request(client)
    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def sender(api: Api, method: str, url: str, body: dict[str, Any] | None = None,
           **headers: str) -> Callable[[httpx.Client], httpx.Response]:
    """One request of ``api``'s caller, to be sent on a racer's own connection."""
    sent = {**api.caller.headers, **{name.replace("_", "-"): value for name, value in headers.items()}}
    return lambda client: client.request(method, url, json=body, headers=sent)


def patcher(api: Api, url: str, version: str, body: dict[str, Any]) -> Callable[[httpx.Client], httpx.Response]:
    return sender(api, "PATCH", url, body, If_Match=version)


def test_two_patches_on_one_version_one_wins(admin, api_url):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    url = "/agents/scout/schedules/nightly"
    for round_ in range(ROUNDS):
        version = admin.etag(url)
        crons = [f"{round_} 1 * * *", f"{round_} 2 * * *"]
        answers = race(api_url, [patcher(admin, url, version, {"cron": cron}) for cron in crons])
        assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]
        winner = next(a for a in answers if a.status_code == 200)
        loser = next(a for a in answers if a.status_code == 412)
        current = int(version.strip('"')) + 1
        assert assert_problem(loser, 412, "version-mismatch")["current_version"] == current
        after = admin.get(url)
        assert after.headers["ETag"] == winner.headers["ETag"] == f'"{current}"'
        assert after.json()["cron"] == winner.json()["cron"]
    updates = [e for e in admin.get(f"{url}/audit").json() if e["action"] == "update"]
    assert len(updates) == ROUNDS  # each loser left no trace


def test_a_pause_and_a_patch_on_one_version_one_wins(admin, api_url):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    url = "/agents/scout/schedules/nightly"
    answers = race(api_url, [sender(admin, "POST", f"{url}/pause", {"reason": "race"}, If_Match='"1"'),
                             patcher(admin, url, '"1"', {"cron": "5 5 * * *"})])
    assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]
    after = admin.get(url).json()
    paused_won = answers[0].status_code == 200
    assert after["paused"] is paused_won and (after["cron"] == "5 5 * * *") is not paused_won
    assert after["version"] == 2


def test_two_agent_patches_on_one_version_one_wins(admin, api_url):
    admin.create_agent("scout")
    for round_ in range(ROUNDS):
        version = admin.etag("/agents/scout")
        answers = race(api_url, [patcher(admin, "/agents/scout", version, {"config": {"who": who, "round": round_}})
                                 for who in ("left", "right")])
        assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]
        winner = next(a for a in answers if a.status_code == 200)
        assert admin.get("/agents/scout").json()["config"] == winner.json()["config"]


def test_two_creates_of_one_name_one_wins(admin, api_url):
    """Both pass validation before either commits; the database's constraint picks one, the other is told why."""
    for round_ in range(ROUNDS):
        name = f"twin-{round_}"
        answers = race(api_url, [sender(admin, "POST", "/agents", {"name": name})] * 2)
        assert sorted(a.status_code for a in answers)[0] == 201, [a.text for a in answers]
        loser = next(a for a in answers if a.status_code != 201)
        assert loser.status_code in (409, 422), loser.text
        assert_problem(loser, loser.status_code, "conflict" if loser.status_code == 409 else "validation-error")
        assert Agent.objects.live().filter(name=name).count() == 1


def trigger_with_key(api: Api, key: str, body: dict[str, Any], schedule: str = "nightly",
                     ) -> Callable[[httpx.Client], httpx.Response]:
    return sender(api, "POST", f"/agents/scout/schedules/{schedule}/trigger", body, Idempotency_Key=key)


def test_one_idempotency_key_sent_concurrently_makes_one_run(admin, api_url):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    for round_ in range(ROUNDS):
        key = f"deploy-{round_}"
        answers = race(api_url, [trigger_with_key(admin, key, {"input": "ship it"})] * 5)
        accepted = [a for a in answers if a.status_code == 202]
        assert accepted, [a.text for a in answers]
        assert len({a.json()["id"] for a in accepted}) == 1, [a.text for a in accepted]
        for other in answers:
            if other.status_code != 202:
                assert_problem(other, 409, "request-in-progress")
                assert other.headers["Retry-After"]
        assert sum(a.headers.get("Idempotent-Replayed") != "true" for a in accepted) <= 1
        run_id = accepted[0].json()["id"]
        retry = trigger_with_key(admin, key, {"input": "ship it"})(admin.client)
        assert retry.status_code == 202 and retry.json()["id"] == run_id
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.headers["Location"] == f"/api/v1/runs/{run_id}"
    assert Run.objects.count() == ROUNDS


def test_one_idempotency_key_with_another_request_is_refused(admin, api_url):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    admin.create_schedule("scout", "hourly", cron="0 * * * *")
    first = trigger_with_key(admin, "k-1", {"input": "a"})(admin.client)
    assert first.status_code == 202, first.text
    body = assert_problem(trigger_with_key(admin, "k-1", {"input": "b"})(admin.client), 422,
                          "idempotency-key-reused")
    assert "different request" in body["detail"]
    assert_problem(trigger_with_key(admin, "k-1", {"input": "a"}, "hourly")(admin.client), 422,
                   "idempotency-key-reused")
    assert Run.objects.count() == 1

    answers = race(api_url, [trigger_with_key(admin, "k-2", {"input": "a"}),
                             trigger_with_key(admin, "k-2", {"input": "b"})])
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 202 and codes[1] in (409, 422), [a.text for a in answers]
    assert Run.objects.count() == 2


def test_idempotency_keys_belong_to_their_caller(admin, make_caller, api_as):
    """Two callers choosing the same key do not share an answer (nor learn of each other's request)."""
    operator = api_as(make_caller(Role.OPERATOR))
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    mine = trigger_with_key(admin, "nightly-report", {})(admin.client)
    theirs = trigger_with_key(operator, "nightly-report", {})(operator.client)
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers


def test_idempotent_create_makes_one_agent(admin, api_url):
    post = sender(admin, "POST", "/agents", {"name": "scout"}, Idempotency_Key="create-scout")
    answers = race(api_url, [post] * 4)
    created = [a for a in answers if a.status_code == 201]
    assert created and len({a.json()["id"] for a in created}) == 1, [a.text for a in answers]
    assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    again = post(admin.client)
    assert again.status_code == 201 and again.json() == created[0].json()
    assert again.headers["ETag"] == '"1"' and again.headers["Idempotent-Replayed"] == "true"
    assert Agent.objects.filter(name="scout").count() == 1
    assert_problem(admin.post("/agents", json={"name": "scout"}, headers={"Idempotency-Key": ""}), 422,
                   "validation-error")


def test_two_replays_of_one_dead_run_replay_it_once(admin, api_url):
    admin.create_agent("scout")
    admin.create_schedule("scout", "nightly")
    run = admin.trigger("scout", "nightly")
    Run.objects.filter(pk=run["id"]).update(state="dead", error_message="retries exhausted")
    for _ in range(ROUNDS):
        answers = race(api_url, [sender(admin, "POST", f"/runs/{run['id']}/replay")] * 2)
        assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
        assert_problem(next(a for a in answers if a.status_code == 409), 409, "conflict")
        assert Run.objects.get(pk=run["id"]).state == "pending"
        Run.objects.filter(pk=run["id"]).update(state="dead")
    assert Run.objects.count() == 1
    assert AuditEntry.objects.filter(object_type="run", object_id=run["id"], action="replay").count() == ROUNDS
