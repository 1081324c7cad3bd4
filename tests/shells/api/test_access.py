"""Who may call what: every endpoint and verb, for another workspace, each role, and dead keys.

Each check loops over the whole matrix and reports every endpoint that
answered wrongly at once, rather than stopping at the first.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from runs.models import Run
from schedules.models import Agent, Schedule
from tests.shells.api.conftest import Api, Caller, assert_problem
from workspaces.keys import api_key_revoke
from workspaces.models import ApiKey, Membership, Role


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with {agent}, {schedule}, {run}
    role: str  # the least role that may call it
    ok: int  # the answer to a caller allowed to, on the ``acme`` fixture's objects
    body: dict[str, Any] | None = None
    versioned: str | None = None  # the path whose ETag a write sends as If-Match

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


AGENT, SCHEDULE, RUN = "/agents/{agent}", "/agents/{agent}/schedules/{schedule}", "/runs/{run}"
ENDPOINTS = [
    Endpoint("GET", "/agents", Role.VIEWER, 200),
    Endpoint("POST", "/agents", Role.ADMIN, 201, {"name": "newcomer"}),
    Endpoint("GET", AGENT, Role.VIEWER, 200),
    Endpoint("PATCH", AGENT, Role.ADMIN, 200, {"config": {"sleep": 0}}, versioned=AGENT),
    Endpoint("DELETE", AGENT, Role.ADMIN, 204, versioned=AGENT),
    Endpoint("GET", f"{AGENT}/schedules", Role.VIEWER, 200),
    Endpoint("POST", f"{AGENT}/schedules", Role.ADMIN, 201, {"name": "newcomer", "cron": "0 1 * * *"}),
    Endpoint("GET", SCHEDULE, Role.VIEWER, 200),
    Endpoint("PATCH", SCHEDULE, Role.ADMIN, 200, {"cron": "0 2 * * *"}, versioned=SCHEDULE),
    Endpoint("DELETE", SCHEDULE, Role.ADMIN, 204, versioned=SCHEDULE),
    Endpoint("POST", f"{SCHEDULE}/pause", Role.OPERATOR, 200, {"reason": "matrix"}, versioned=SCHEDULE),
    Endpoint("POST", f"{SCHEDULE}/resume", Role.OPERATOR, 200, None, versioned=SCHEDULE),
    Endpoint("POST", f"{SCHEDULE}/trigger", Role.OPERATOR, 202, {}),
    Endpoint("GET", f"{SCHEDULE}/runs", Role.VIEWER, 200),
    Endpoint("GET", f"{SCHEDULE}/preview", Role.VIEWER, 200),
    Endpoint("GET", f"{SCHEDULE}/stats", Role.VIEWER, 200),
    Endpoint("GET", f"{SCHEDULE}/audit", Role.VIEWER, 200),
    Endpoint("GET", "/runs", Role.VIEWER, 200),
    Endpoint("GET", RUN, Role.VIEWER, 200),
    Endpoint("POST", f"{RUN}/cancel", Role.OPERATOR, 200),
    Endpoint("POST", f"{RUN}/replay", Role.OPERATOR, 409),  # allowed, but the run is not dead
]
RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass
class Acme:
    """A workspace with an agent, a schedule and a pending run, and an admin to look at them."""

    admin: Api
    refs: dict[str, str]

    def url(self, endpoint: Endpoint) -> str:
        return endpoint.path.format(**self.refs)

    def call(self, api: Api, endpoint: Endpoint, *, version: str | None = None) -> httpx.Response:
        headers = {}
        if endpoint.versioned:
            headers["If-Match"] = version or self.admin.etag(endpoint.versioned.format(**self.refs))
        kwargs: dict[str, Any] = {"json": endpoint.body} if endpoint.body is not None else {}
        return api.request(endpoint.method, self.url(endpoint), headers=headers, **kwargs)

    def snapshot(self) -> tuple[Any, ...]:
        """What a refused call must leave alone."""
        return (list(Agent.objects.order_by("pk").values_list("pk", "version", "deleted_at")),
                list(Schedule.objects.order_by("pk").values_list("pk", "version", "paused", "deleted_at")),
                list(Run.objects.order_by("pk").values_list("pk", "state", "cancel_requested_at")))


@pytest.fixture
def acme(make_caller, api_as) -> Acme:
    admin = api_as(make_caller(Role.ADMIN, "acme"))
    agent = admin.create_agent("scout")
    schedule = admin.create_schedule("scout", "nightly")
    run = admin.trigger("scout", "nightly")
    return Acme(admin, {"agent": str(agent["id"]), "schedule": str(schedule["id"]), "run": str(run["id"])})


def mismatches(results: list[tuple[Endpoint, httpx.Response, int]]) -> list[str]:
    return [f"{endpoint}: {response.status_code} (wanted {wanted}) {response.text[:200]}"
            for endpoint, response, wanted in results if response.status_code != wanted]


def test_another_workspace_gets_404_for_every_endpoint_and_verb(acme, make_caller, api_as):
    outsider = api_as(make_caller(Role.ADMIN, "globex"))
    outsider.create_agent("scout")  # the same name in its own workspace: names are per workspace
    before = acme.snapshot()
    results = []
    for endpoint in ENDPOINTS:
        if "{" not in endpoint.path:
            continue
        response = acme.call(outsider, endpoint)
        results.append((endpoint, response, 404))
        if response.status_code == 404:
            assert_problem(response, 404, "not-found")
    assert not mismatches(results), "\n".join(mismatches(results))
    after = acme.snapshot()
    assert after[1:] == before[1:]
    assert after[0][: len(before[0])] == before[0]  # the outsider's own agent is the only new row

    own_scout = outsider.get("/agents/scout").json()
    assert str(own_scout["id"]) != acme.refs["agent"]
    crossed = outsider.get(f"/agents/scout/schedules/{acme.refs['schedule']}")
    assert_problem(crossed, 404, "not-found")  # another workspace's schedule under one's own agent
    assert_problem(outsider.post("/agents/scout/schedules/nightly/trigger", json={}), 404, "not-found")
    assert [a["id"] for a in outsider.get("/agents").json()["items"]] == [own_scout["id"]]
    assert outsider.get("/runs").json()["items"] == []
    assert outsider.get("/runs", params={"agent": "scout"}).json()["items"] == []


def test_not_found_looks_the_same_as_never_existed(acme, make_caller, api_as):
    """An id of another workspace and an id that never existed get the same answer."""
    outsider = api_as(make_caller(Role.ADMIN, "globex"))
    theirs = outsider.get(f"/runs/{acme.refs['run']}")
    nothing = outsider.get("/runs/987654321")
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json()["type"] == nothing.json()["type"]
    run = acme.refs["run"]
    assert theirs.json()["detail"].replace(run, "N") == nothing.json()["detail"].replace("987654321", "N")


def expected_for(role: str, endpoint: Endpoint) -> int:
    return 403 if RANK[Role(role)] < RANK[Role(endpoint.role)] else endpoint.ok


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_roles_limit_the_verbs(acme, make_caller, api_as, role):
    """Viewers read; operators also pause, resume, trigger, cancel and replay; only admins create, edit, delete."""
    caller = api_as(make_caller(role, "acme"))
    wrong = []
    for endpoint in ENDPOINTS:
        before = acme.snapshot()
        response = acme.call(caller, endpoint)
        wanted = expected_for(role, endpoint)
        if response.status_code != wanted:
            wrong.append(f"{endpoint}: {response.status_code}, wanted {wanted}: {response.text[:200]}")
        elif response.status_code == 403:
            body = assert_problem(response, 403, "forbidden")
            assert endpoint.role in body["detail"] and role in body["detail"], body
            assert acme.snapshot() == before, f"{endpoint} was refused but changed something"
    assert not wrong, "\n".join(wrong)


def test_an_admin_may_call_everything(acme, make_caller, api_as):
    admin = api_as(make_caller(Role.ADMIN, "acme"))
    deletes = [e for e in reversed(ENDPOINTS) if e.method == "DELETE"]  # the schedule, then its agent
    results = [(e, acme.call(admin, e), e.ok) for e in ENDPOINTS if e.method != "DELETE"]
    results += [(e, acme.call(admin, e), e.ok) for e in deletes]
    assert not mismatches(results), "\n".join(mismatches(results))


def test_viewer_is_refused_before_the_version_is_checked(acme, make_caller, api_as):
    """A viewer's write without If-Match is 403, not 428: the role decides first."""
    viewer = api_as(make_caller(Role.VIEWER, "acme"))
    url = SCHEDULE.format(**acme.refs)
    assert_problem(viewer.patch(url, json={"cron": "0 5 * * *"}), 403, "forbidden")
    assert_problem(viewer.delete(url), 403, "forbidden")


def dead_key_answers(client: httpx.Client, acme: Acme, headers: dict[str, str]) -> list[str]:
    wrong = []
    for endpoint in ENDPOINTS:
        kwargs: dict[str, Any] = {"json": endpoint.body} if endpoint.body is not None else {}
        response = client.request(endpoint.method, acme.url(endpoint), headers={**headers, "If-Match": '"1"'},
                                  **kwargs)
        if response.status_code != 401 or not response.headers.get("WWW-Authenticate", "").startswith("Bearer"):
            wrong.append(f"{endpoint}: {response.status_code} {dict(response.headers)} {response.text[:200]}")
        else:
            assert_problem(response, 401, "unauthenticated")
    return wrong


@pytest.mark.parametrize("how", ["revoked", "expired", "removed", "deactivated", "wrong secret", "missing",
                                 "not a key"])
def test_a_dead_key_is_401_everywhere(acme, make_caller, http, how):
    caller: Caller = make_caller(Role.ADMIN, "acme", expires_at=(
        timezone.now() - timedelta(seconds=1) if how == "expired" else None))
    headers = caller.headers
    if how == "revoked":
        assert api_key_revoke(ApiKey.objects.get(pk=caller.key_id), now=timezone.now())
    elif how == "removed":
        Membership.objects.filter(user_id=caller.user_id).delete()
    elif how == "deactivated":
        get_user_model().objects.filter(pk=caller.user_id).update(is_active=False)
    elif how == "wrong secret":
        headers = {"Authorization": f"Bearer {caller.token[:-4]}AAAA"}
    elif how == "missing":
        headers = {}
    elif how == "not a key":
        headers = {"Authorization": "Bearer hunter2"}
    before = acme.snapshot()
    wrong = dead_key_answers(http, acme, headers)
    assert not wrong, "\n".join(wrong)
    assert acme.snapshot() == before


def test_role_changes_apply_to_existing_keys_at_once(acme, make_caller, api_as):
    caller = make_caller(Role.ADMIN, "acme")
    api = api_as(caller)
    url = SCHEDULE.format(**acme.refs)
    assert api.patch(url, json={"cron": "0 6 * * *"}, headers={"If-Match": api.etag(url)}).status_code == 200
    Membership.objects.filter(user_id=caller.user_id).update(role=Role.VIEWER)
    assert_problem(api.patch(url, json={"cron": "0 7 * * *"}, headers={"If-Match": api.etag(url)}),
                   403, "forbidden")
    assert api.get(url).json()["cron"] == "0 6 * * *"
