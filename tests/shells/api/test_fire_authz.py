"""Fire-time authorisation: a schedule runs on its creator's standing, checked again at every fire.

The schedule is made through the API by a member; a real beat fires it; the
member is then removed (or demoted) and the next tick is recorded
``skipped: unauthorized`` and the schedule paused with the reason.
"""
from __future__ import annotations

from typing import Any

from tests.shells.api.conftest import Api, assert_problem
from workspaces.models import AuditEntry, Membership, Role, Workspace

URL = "/agents/scout/schedules/ticker"


def runs(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"{URL}/runs", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_removed_creator_stops_the_schedule_at_the_next_tick(make_caller, api_as, stack, waiter):
    creator = api_as(make_caller(Role.ADMIN, username="creator"))
    colleague = api_as(make_caller(Role.ADMIN, username="colleague"))
    creator.create_agent("scout")
    Workspace.objects.update(min_interval_seconds=1)  # a tick every 2 s keeps the test short
    made = creator.create_schedule("scout", "ticker", kind="interval", cron="", interval_seconds=2)
    assert made["created_by"] == "creator"
    stack.worker()
    stack.beat()
    waiter(lambda: runs(colleague, state="succeeded"), timeout=90, what="a tick run on the creator's standing")

    Membership.objects.filter(user_id=creator.caller.user_id).delete()
    skipped = waiter(lambda: runs(colleague, state="skipped"), timeout=90, what="a tick refused at fire time")
    assert [(r["skip_reason"], r["trigger"]) for r in skipped] == [("unauthorized", "schedule")]

    schedule = colleague.get(URL).json()
    assert schedule["state"] == "paused" and schedule["paused"] is True
    assert "creator" in schedule["paused_reason"] and str(creator.caller.user_id) in schedule["paused_reason"]
    newest = runs(colleague)[0]
    assert newest["id"] == skipped[0]["id"]  # paused at the refused tick: nothing fired after it
    pause = next(e for e in colleague.get(f"{URL}/audit").json() if e["action"] == "pause")
    assert pause["source"] == "system" and pause["user"] is None
    assert pause["detail"] == schedule["paused_reason"]
    assert_problem(creator.get(URL), 401, "unauthenticated")  # their key went with their membership


def test_a_demoted_creator_makes_a_trigger_skipped_and_pauses(make_caller, api_as):
    """A manual trigger checks the creator's standing too: an operator cannot run a viewer's schedule."""
    creator = api_as(make_caller(Role.ADMIN, username="creator"))
    operator = api_as(make_caller(Role.OPERATOR, username="operator"))
    creator.create_agent("scout")
    creator.create_schedule("scout", "ticker")
    Membership.objects.filter(user_id=creator.caller.user_id).update(role=Role.VIEWER)

    run = operator.trigger("scout", "ticker")
    assert (run["state"], run["skip_reason"], run["started_by"]) == ("skipped", "unauthorized", "operator")
    schedule = operator.get(URL).json()
    assert schedule["state"] == "paused" and "creator" in schedule["paused_reason"]
    assert AuditEntry.objects.filter(object_type="schedule", object_id=schedule["id"], action="pause",
                                     source="system").count() == 1


def test_an_operator_creator_keeps_the_schedule_running(make_caller, api_as):
    """Operators may start runs: a creator demoted from admin to operator still authorises the ticks."""
    creator = api_as(make_caller(Role.ADMIN, username="creator"))
    creator.create_agent("scout")
    creator.create_schedule("scout", "ticker")
    Membership.objects.filter(user_id=creator.caller.user_id).update(role=Role.OPERATOR)
    run = creator.trigger("scout", "ticker")
    assert run["state"] == "pending" and run["skip_reason"] == ""
    assert creator.get(URL).json()["state"] == "active"
