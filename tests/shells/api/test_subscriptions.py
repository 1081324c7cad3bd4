"""``/api/v1/subscriptions`` through a real gunicorn: CRUD with versions, roles, validation, release."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import BreakerState, Subscription
from tests.shells.api.conftest import Api, assert_problem, field_names
from workspaces.models import AuditEntry


@pytest.fixture
def admin(make_caller, api_as) -> Api:
    return api_as(make_caller("admin"))


def create(api: Api, **fields) -> dict:
    body = {"name": "pushes", "agent": "scout", "event_type": "github.*", **fields}
    response = api.post("/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_subscription_crud_with_versions_and_audit(admin):
    admin.create_agent("scout")
    sub = create(admin, match={"data.repo": "web"}, input_template="{{event.type}} on {{event.data.repo}}")
    assert (sub["overlap_policy"], sub["concurrency_scope"], sub["breaker_state"]) == ("buffer", "session", "closed")
    url = f"/subscriptions/{sub['id']}"
    assert admin.get("/subscriptions/pushes").json() == admin.get(url).json() == sub
    assert admin.get(url, headers={"If-None-Match": '"1"'}).status_code == 304
    assert_problem(admin.patch(url, json={"debounce_seconds": 5}), 428, "precondition-required")
    changed = admin.patch(url, json={"debounce_seconds": 5}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["ETag"] == '"2"'
    assert_problem(admin.patch(url, json={"debounce_seconds": 6}, headers={"If-Match": '"1"'}), 412,
                   "version-mismatch")
    paused = admin.post(f"{url}/pause", json={"reason": "noisy"}, headers={"If-Match": '"2"'})
    assert paused.json()["paused"] is True and paused.headers["ETag"] == '"3"'
    assert admin.post(f"{url}/resume", headers={"If-Match": '"3"'}).json()["paused"] is False
    assert admin.delete(url, headers={"If-Match": '"4"'}).status_code == 204
    assert_problem(admin.get(url), 404, "not-found")
    actions = list(AuditEntry.objects.filter(object_type="subscription").order_by("id").values_list("action",
                                                                                                  flat=True))
    assert actions == ["create", "update", "pause", "resume", "delete"]


@pytest.mark.parametrize("fields, field", [
    ({"event_type": "github.**"}, "event_type"),
    ({"event_type": "bad type"}, "event_type"),
    ({"match": {"repo": "web"}}, "match"),           # not under an event field
    ({"match": {"data.repo": ["web"]}}, "match"),    # not a scalar
    ({"match": {"data.repo": "a\u0000b"}}, "match"),  # no event can carry it
    ({"input_template": "{{event.nope}}"}, "input_template"),
    ({"input_template": "{{run_number}}"}, "input_template"),
    ({"session_mode": "keyed"}, "session_key"),
    ({"agent": "nobody"}, None),
])
def test_a_bad_definition_names_what_is_wrong(admin, fields, field):
    admin.create_agent("scout")
    response = admin.post("/subscriptions", json={"name": "bad", "agent": "scout", "event_type": "a.b", **fields})
    if field is None:
        assert_problem(response, 404, "not-found")
        return
    problem = assert_problem(response, 422, "validation-error")
    assert field in field_names(problem), problem
    if field == "input_template":
        assert fields["input_template"].strip("{}") in problem["detail"]


def test_roles_and_workspaces(make_caller, api_as, admin):
    admin.create_agent("scout")
    sub = create(admin)
    viewer = api_as(make_caller("viewer"))
    operator = api_as(make_caller("operator"))
    stranger = api_as(make_caller("admin", workspace="other"))
    url = f"/subscriptions/{sub['id']}"
    assert viewer.get(url).status_code == 200
    assert_problem(viewer.post(f"{url}/pause", json={}, headers={"If-Match": '"1"'}), 403, "forbidden")
    assert_problem(operator.delete(url, headers={"If-Match": '"1"'}), 403, "forbidden")
    assert operator.post(f"{url}/pause", json={}, headers={"If-Match": '"1"'}).status_code == 200
    assert_problem(stranger.get(url), 404, "not-found")
    assert stranger.get("/subscriptions").json()["items"] == []


def test_release_closes_a_held_breaker(admin):
    admin.create_agent("scout")
    sub = create(admin)
    Subscription.objects.filter(id=sub["id"]).update(breaker_state=BreakerState.HELD,
                                                     held_at=timezone.now() - timedelta(minutes=1))
    url = f"/subscriptions/{sub['id']}"
    released = admin.post(f"{url}/release", headers={"If-Match": '"1"'})
    assert released.status_code == 200, released.text
    assert released.json()["breaker_state"] == "closed" and released.headers["ETag"] == '"2"'
    entry = AuditEntry.objects.get(object_type="subscription", action="release")
    assert entry.detail == "breaker held -> closed" and entry.source == "api"
    assert admin.get(f"{url}/runs").json()["items"] == []
