"""The run page's causal neighbourhood: the schedules a run created and its chain as a tree of who started whom."""
from __future__ import annotations

import itertools
import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import Run, RunState, Trigger
from schedules.models import Agent, CreatorKind, Schedule
from schedules.services import schedule_delete, schedule_pause
from shells.admin import run_chain
from workspaces.audit import Actor
from workspaces.models import Membership, Role, Workspace

pytestmark = pytest.mark.django_db

CHAIN = "c0ffee" * 5 + "00"
_keys = itertools.count(1)


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def agent() -> Agent:
    return Agent.objects.create(name="scout")


def make_run(agent: Agent, *, parent: Run | None = None, trigger: str = Trigger.WAKEUP, chain_id: str = CHAIN,
             state: str = RunState.SUCCEEDED) -> Run:
    return Run.objects.create(agent=agent, trigger=trigger, state=state, chain_id=chain_id, parent_run=parent,
                              tick_at=timezone.now() - timedelta(minutes=next(_keys)),
                              idempotency_key=f"chain-key-{next(_keys)}")


def made_by(run: Run, name: str, reason: str, **fields) -> Schedule:
    return Schedule.objects.create(agent=run.agent, name=name, creator_kind=CreatorKind.AGENT_RUN,
                                   origin_run_id=run.pk, origin_agent=run.agent, reason=reason, **fields)


def run_page(client, run: Run) -> str:
    response = client.get(f"/admin/runs/run/{run.pk}/change/")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def field(html: str, name: str) -> str:
    """The HTML of one read-only field of the page."""
    found = re.search(rf'<div class="[^"]*field-{name}.*?<div class="readonly">(.*?)</div>\s*</div>', html, re.S)
    assert found, f"no field {name} on the page"
    return found[1]


def tree(html: str) -> list[tuple[int, int]]:
    """(nesting depth, run id) of each chain entry, in the page's order."""
    depth, entries = 0, []
    for tag in re.finditer(r'<ul class="tw-chain"|</ul>|<li data-run="(\d+)"', field(html, "chain_tree")):
        if tag[0].startswith("<ul"):
            depth += 1
        elif tag[0] == "</ul>":
            depth -= 1
        else:
            entries.append((depth, int(tag[1])))
    assert depth == 0, "the lists are closed"
    return entries


# --- schedules created -------------------------------------------------------------------

def test_the_run_page_lists_the_schedules_the_run_created_with_links_statuses_and_reasons(staff_client, agent):
    run = make_run(agent, trigger=Trigger.MANUAL)
    now = timezone.now()
    kept = made_by(run, "agent-hourly", "check the deploy every hour", kind="interval", interval_seconds=3600,
                   end_at=now + timedelta(days=7))
    gone = made_by(run, "wakeup-1", "look again <in> 10 minutes", kind="once", run_at=now + timedelta(minutes=10))
    schedule_delete(gone, now=now, actor=Actor.system(), reason="the watched process exited")
    paused = made_by(run, "agent-nightly", "", cron="0 3 * * *")
    schedule_pause(paused, reason="too noisy", now=now)
    by_agent = made_by(run, "wakeup-2", "", kind="once", run_at=now + timedelta(minutes=20))
    schedule_delete(by_agent, now=now, actor=Actor.system(), reason=f"cancelled by run {run.pk} of agent scout")
    by_person = made_by(run, "agent-daily", "", cron="0 5 * * *")
    schedule_delete(by_person, now=now, actor=Actor(source="admin", user_id=None))
    made_by(make_run(agent), "someone-elses", "another run's schedule", cron="0 4 * * *")

    shown = field(run_page(staff_client, run), "schedules_created")
    text = unescape(re.sub(r"<[^>]+>", " ", shown))
    assert f'<a href="/admin/schedules/schedule/{kept.pk}/change/">agent-hourly</a>' in shown
    assert "Every hour" in text and "check the deploy every hour" in text and "active until" in text
    # Soft-deleted: named, not linked to the schedule page (which lists live schedules only); its runs are.
    assert f"/admin/schedules/schedule/{gone.pk}/change/" not in shown
    assert f'href="/admin/runs/run/?schedule__id__exact={gone.pk}"' in shown
    assert "cancelled: the watched process exited" in text and "look again <in> 10 minutes" in text
    assert "&lt;in&gt;" in shown  # the agent's words are escaped
    assert "paused: too noisy" in text and "At 03:00" in text
    assert f"cancelled: by run {run.pk} of agent scout (" in text
    assert "cancelled: via admin, no reason recorded" in text
    assert "someone-elses" not in text


def test_a_run_that_created_nothing_says_none_and_a_long_list_is_cut(staff_client, agent, monkeypatch):
    run = make_run(agent, trigger=Trigger.MANUAL)
    assert field(run_page(staff_client, run), "schedules_created").strip() == "none"
    for n in range(5):
        made_by(run, f"agent-{n}", f"reason {n}", cron="0 3 * * *")
    monkeypatch.setattr(run_chain, "CREATED_LIMIT", 3)
    shown = field(run_page(staff_client, run), "schedules_created")
    assert shown.count("<tr>") == 1 + 3 and "+2 more" in shown
    assert "agent-0" in shown and "agent-3" not in shown


# --- the chain -----------------------------------------------------------------------------

@pytest.fixture
def family(agent) -> dict[str, Run]:
    root = make_run(agent, trigger=Trigger.EVENT)
    child = make_run(agent, parent=root)
    grandchild = make_run(agent, parent=child, state=RunState.DEAD)
    sibling = make_run(agent, parent=root, trigger=Trigger.RESUME)
    return {"root": root, "child": child, "grandchild": grandchild, "sibling": sibling}


def test_the_chain_is_a_tree_of_who_started_whom_with_this_run_marked(staff_client, family):
    root, child, grandchild, sibling = family.values()
    html = run_page(staff_client, child)
    assert tree(html) == [(1, root.pk), (2, child.pk), (3, grandchild.pk), (2, sibling.pk)]
    shown = field(html, "chain_tree")
    assert f'<strong class="tw-chain-current">run {child.pk}</strong> (this run)' in shown
    assert f'href="/admin/runs/run/{child.pk}/change/"' not in shown  # this run is not a link to itself
    for other in (root, grandchild, sibling):
        assert f'<a href="/admin/runs/run/{other.pk}/change/">run {other.pk}</a>' in shown
    assert "tw-state-dead" in shown and "Resume" in shown and "Event" in shown
    assert tree(run_page(staff_client, grandchild)) == tree(html)  # one chain, one tree, from any of its runs


def test_a_run_whose_parent_is_not_shown_starts_at_the_top_and_the_chain_is_bounded(staff_client, family,
                                                                                      monkeypatch):
    root, child, grandchild, sibling = family.values()
    monkeypatch.setattr(run_chain, "CHAIN_LIMIT", 2)
    html = run_page(staff_client, sibling)
    # The first two by id, then this run: its parent (the root) is shown, so it nests under it.
    assert tree(html) == [(1, root.pk), (2, child.pk), (2, sibling.pk)]
    assert "+2 more runs in this chain" in field(html, "chain_tree")
    monkeypatch.setattr(run_chain, "CHAIN_LIMIT", 1)
    assert tree(run_page(staff_client, grandchild)) == [(1, root.pk), (1, grandchild.pk)]


def test_a_run_without_a_chain_shows_itself_alone(staff_client, agent):
    run = make_run(agent, trigger=Trigger.MANUAL, chain_id="")
    assert tree(run_page(staff_client, run)) == [(1, run.pk)]


def test_a_deep_chain_stops_indenting_and_says_each_level(agent):
    runs = [Run(id=n, agent=agent, parent_run_id=n - 1 if n > 1 else None, trigger=Trigger.WAKEUP,
                state=RunState.SUCCEEDED, chain_id=CHAIN) for n in range(1, 31)]
    html = run_chain.nested_list(run_chain.chain_order(runs), current=30)
    assert html.count('<ul class="tw-chain"') == html.count("</ul>") == run_chain.MAX_INDENT + 1
    assert html.count("<li ") == html.count("</li>") == 30
    assert f"level {run_chain.MAX_INDENT + 1}</small>" in html and "level 29</small>" in html
    assert f"level {run_chain.MAX_INDENT}</small>" not in html


# --- workspaces ------------------------------------------------------------------------------

def test_a_member_sees_only_their_workspaces_part_of_a_chain_id(client):
    mine, theirs = Workspace.objects.create(slug="mine", name="Mine"), Workspace.objects.create(slug="theirs",
                                                                                                   name="T")
    ours = make_run(Agent.objects.create(workspace=mine, name="ours"))
    foreign_agent = Agent.objects.create(workspace=theirs, name="other")
    foreign = make_run(foreign_agent, parent=ours)  # the same chain id, another workspace
    Schedule.objects.create(agent=foreign_agent, name="planted", cron="0 3 * * *", creator_kind=CreatorKind.AGENT_RUN,
                            origin_run_id=ours.pk, origin_agent=foreign_agent, reason="not yours")
    user = get_user_model().objects.create_user("member", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["schedules", "runs"]))
    Membership.objects.create(workspace=mine, user=user, role=Role.VIEWER)
    client.force_login(user)

    html = run_page(client, ours)
    assert tree(html) == [(1, ours.pk)]
    assert f"/admin/runs/run/{foreign.pk}/" not in html
    assert field(html, "schedules_created").strip() == "none" and "planted" not in html
    assert client.get(f"/admin/runs/run/{foreign.pk}/change/").status_code == 302  # not found: sent away


# --- cost ----------------------------------------------------------------------------------------

def page_queries(client, run: Run) -> int:
    with CaptureQueriesContext(connection) as captured:
        run_page(client, run)
    return len(captured.captured_queries)


def test_the_run_pages_query_count_does_not_grow_with_the_chain_or_the_schedules(staff_client, family):
    child = family["child"]
    before = page_queries(staff_client, child)
    parents = [family["grandchild"]]
    for n in range(30):
        parents.append(make_run(child.agent, parent=parents[n // 2]))
    for n in range(8):
        made_by(child, f"agent-{n}", f"reason {n}", cron="0 3 * * *")
    grown = page_queries(staff_client, child)
    assert len(tree(run_page(staff_client, child))) == 4 + 30
    assert grown == before
