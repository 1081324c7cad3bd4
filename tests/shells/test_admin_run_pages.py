"""The admin's run pages and its front page (the dashboard), through Django's test client."""
from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from runs.models import AgentCall, CallState, Run, RunState, Trigger
from schedules.models import Agent, Schedule
from workspaces.models import AuditEntry, Membership, Role, Workspace

RUNS = "/admin/runs/run/"
_keys = itertools.count(1)


@pytest.fixture
def staff_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def schedule(db) -> Schedule:
    agent = Agent.objects.create(name="reporter")
    return Schedule.objects.create(agent=agent, name="morning", cron="0 9 * * 1-5", timezone="America/New_York")


def make_run(schedule: Schedule | None, *, agent: Agent | None = None, state: str = RunState.SUCCEEDED,
             tick: datetime | None = None, **fields) -> Run:
    agent = agent or schedule.agent  # type: ignore[union-attr]
    tick = tick or timezone.now() - timedelta(minutes=next(_keys))
    started = tick + timedelta(seconds=1)
    timings = {"started_at": started, "finished_at": started + timedelta(seconds=2, milliseconds=500)}
    return Run.objects.create(
        schedule=schedule, agent=agent, trigger=fields.pop("trigger", Trigger.SCHEDULE),
        tick_at=tick, state=state, idempotency_key=f"key-{next(_keys)}", **{**timings, **fields})


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def listed_ids(html: str) -> set[int]:
    return {int(found) for found in re.findall(r'<th class="field-id"><a href="/admin/runs/run/(\d+)/change/', html)}


# --- the run list ----------------------------------------------------------------------

def test_the_list_shows_badges_links_local_ticks_durations_and_snippets(staff_client, schedule):
    tick = datetime(2026, 12, 1, 14, 0, 5, tzinfo=UTC)  # 09:00:05 in New York (EST)
    make_run(schedule, tick=tick, output={"summary": "all good"})
    make_run(schedule, state=RunState.DEAD, error_category="timeout", error_message="no answer in 300 s")
    make_run(schedule, state=RunState.SKIPPED, skip_reason="dst_gap", started_at=None, finished_at=None)
    make_run(None, agent=schedule.agent, trigger=Trigger.EVENT, tick=tick, state=RunState.UNKNOWN)
    html = page(staff_client, RUNS)
    assert 'class="tw-state tw-state-succeeded" title="Succeeded" style="background:#1a7f37' in html
    assert "tw-state-dead" in html and "tw-state-unknown" in html
    assert "Local time does not exist (DST gap)" in html  # a skipped run says why
    assert f'<a href="/admin/schedules/schedule/{schedule.pk}/change/">morning</a>' in html
    assert "2026-12-01 09:00:05 EST" in html and "2026-12-01 14:00:05 UTC" in html  # the event run has no zone
    assert "2.50 s" in html
    assert "timeout: no answer in 300 s" in html and "{&quot;summary&quot;: &quot;all good&quot;}" in html


def test_a_long_output_is_cut_in_the_list(staff_client, schedule):
    make_run(schedule, output={"text": "x" * 500})
    html = page(staff_client, RUNS)
    assert "x" * 40 + "…" in html and "x" * 100 not in html.split("title=")[0]


def test_the_list_query_count_does_not_grow_with_the_runs(staff_client, schedule, django_assert_max_num_queries):
    others = [Schedule.objects.create(agent=Agent.objects.create(name=f"agent-{n}"), name=f"s{n}", cron="* * * * *")
              for n in range(5)]
    for n in range(5):
        make_run(others[n % 5])
    with django_assert_max_num_queries(12) as five:
        page(staff_client, RUNS)
    for n in range(45):
        make_run(others[n % 5], state=RunState.FAILED, error_message="boom")
    with django_assert_max_num_queries(len(five.captured_queries)) as fifty:
        assert len(listed_ids(page(staff_client, RUNS))) == 50
    assert len(fifty.captured_queries) == len(five.captured_queries)


def test_filter_by_schedule_id_or_name_and_by_agent(staff_client, schedule):
    other = Schedule.objects.create(agent=Agent.objects.create(name="other"), name="evening", cron="0 18 * * *")
    mine, theirs = make_run(schedule), make_run(other)
    assert listed_ids(page(staff_client, f"{RUNS}?schedule={schedule.pk}")) == {mine.pk}
    assert listed_ids(page(staff_client, f"{RUNS}?schedule=other/evening")) == {theirs.pk}
    assert listed_ids(page(staff_client, f"{RUNS}?agent=reporter")) == {mine.pk}
    assert listed_ids(page(staff_client, f"{RUNS}?agent={other.agent.pk}")) == {theirs.pk}
    linked = page(staff_client, f"{RUNS}?schedule__id__exact={other.pk}")  # a schedule's "View all runs"
    assert listed_ids(linked) == {theirs.pk} and f'name="schedule" value="{other.pk}"' in linked
    assert listed_ids(page(staff_client, f"{RUNS}?agent__id__exact={schedule.agent.pk}")) == {mine.pk}
    assert 'name="schedule" value=""' in page(staff_client, RUNS)  # the box is there before anything is chosen


def test_a_bad_filter_value_says_what_is_wrong_and_lists_nothing(staff_client, schedule):
    make_run(schedule)
    response = staff_client.get(f"{RUNS}?schedule=nobody/nothing")
    assert [str(m) for m in response.context["messages"]] == ["schedule: no schedule 'nobody/nothing'"]
    assert listed_ids(response.content.decode()) == set()
    response = staff_client.get(f"{RUNS}?agent=not a name")
    assert [str(m) for m in response.context["messages"]] == ["agent: expected an id or a name, got 'not a name'"]


def test_filters_by_state_trigger_category_and_chain(staff_client, schedule):
    dead = make_run(schedule, state=RunState.DEAD, error_category="timeout", chain_id="c" * 32)
    make_run(schedule, trigger=Trigger.MANUAL)
    assert listed_ids(page(staff_client, f"{RUNS}?state__exact=dead")) == {dead.pk}
    assert listed_ids(page(staff_client, f"{RUNS}?error_category__exact=timeout")) == {dead.pk}
    assert listed_ids(page(staff_client, f"{RUNS}?trigger__exact=schedule")) == {dead.pk}
    assert listed_ids(page(staff_client, f"{RUNS}?chain_id={'c' * 32}")) == {dead.pk}


# --- the run page ------------------------------------------------------------------------

def test_the_run_page_is_view_only_with_summary_attempts_and_collapsed_internals(staff_client, schedule):
    parent = make_run(schedule)
    run = make_run(schedule, state=RunState.FAILED, output={"b": 1, "a": [1, 2]}, input="Report for 2026-12-01",
                   error_category="agent_error", error_message="HTTP 500", parent_run=parent, chain_id="f" * 32,
                   lease_owner="worker-7", fencing_token=3, attempt=2, max_attempts=3)
    started = run.started_at
    AgentCall.objects.create(run=run, attempt=1, fencing_token=2, idempotency_key=run.idempotency_key,
                             state=CallState.FAILED, finished_at=started, error_message="HTTP 503")
    AgentCall.objects.create(run=run, attempt=2, fencing_token=3, idempotency_key=run.idempotency_key,
                             state=CallState.FAILED, finished_at=started, error_message="HTTP 500")
    html = page(staff_client, f"{RUNS}{run.pk}/change/")
    assert "<h1>View run</h1>" in html and "| View run |" in html
    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert html.index("Summary") < html.index("Input") < html.index("Output") < html.index("Internals")
    assert '"a": [\n    1,\n    2\n  ],\n  "b": 1' in unescape(html)  # pretty-printed, keys sorted
    assert "HTTP 503" in html and "HTTP 500" in html and "2 of 3" in html
    assert f'<a href="/admin/runs/run/{parent.pk}/change/">run {parent.pk}</a>' in html
    assert f"/admin/runs/run/?chain_id={'f' * 32}" in html
    internals = html[html.index("Internals"):]
    assert "collapse" in html[html.rindex("<fieldset", 0, html.index("Internals")):html.index("Internals")]
    assert "worker-7" in internals and "worker-7" not in html[:html.index("Internals")]
    assert "Replay" not in html  # failed runs retry by themselves; Replay is for dead and unknown runs


def test_the_run_page_shows_the_tick_in_the_zone_and_in_utc_and_who_started_it(staff_client, schedule):
    user = get_user_model().objects.get(username="root")
    run = make_run(schedule, tick=datetime(2026, 7, 1, 13, 0, tzinfo=UTC), trigger=Trigger.MANUAL, started_by=user)
    html = page(staff_client, f"{RUNS}{run.pk}/change/")
    assert "2026-07-01 09:00:00 EDT (America/New_York)" in html and "2026-07-01 13:00:00 UTC" in html
    assert "root (manual)" in html


def test_runs_cannot_be_changed_or_deleted_through_the_admin(staff_client, schedule):
    run = make_run(schedule)
    response = staff_client.post(f"{RUNS}{run.pk}/change/", {"state": "pending"})
    assert response.status_code == 403
    assert staff_client.post(f"{RUNS}{run.pk}/delete/").status_code == 403
    assert Run.objects.get(pk=run.pk).state == RunState.SUCCEEDED


@pytest.mark.parametrize("state", [RunState.DEAD, RunState.UNKNOWN])
def test_replay_puts_the_same_run_back_with_its_identity_and_audits_it(staff_client, schedule, state):
    run = make_run(schedule, state=state, attempt=3, max_attempts=3, error_message="exhausted")
    html = page(staff_client, f"{RUNS}{run.pk}/change/")
    assert f'action="/admin/runs/run/{run.pk}/replay/"' in html
    response = staff_client.post(f"{RUNS}{run.pk}/replay/", follow=True)
    replayed = Run.objects.get(pk=run.pk)
    assert (replayed.state, replayed.idempotency_key, replayed.max_attempts) == \
        (RunState.PENDING, run.idempotency_key, 3 + schedule.max_attempts)
    assert Run.objects.count() == 1
    [said] = [str(m) for m in response.context["messages"]]
    assert f'<a href="/admin/runs/run/{run.pk}/change/">run {run.pk}</a>' in said and run.idempotency_key in said
    entry = AuditEntry.objects.get(object_type="run", object_id=run.pk)
    root = get_user_model().objects.get(username="root")
    assert (entry.action, entry.source, entry.user_id) == ("replay", "admin", root.pk)


def test_replay_of_a_run_that_is_not_dead_is_refused_and_changes_nothing(staff_client, schedule):
    run = make_run(schedule, state=RunState.SUCCEEDED)
    assert staff_client.get(f"{RUNS}{run.pk}/replay/").status_code == 405
    response = staff_client.post(f"{RUNS}{run.pk}/replay/", follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        f"run {run.pk} is succeeded: only dead and unknown runs are replayed here"]
    assert Run.objects.get(pk=run.pk).state == RunState.SUCCEEDED and not AuditEntry.objects.exists()


def test_a_viewer_sees_the_run_but_may_not_replay_it(client, schedule):
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*__import__("django.contrib.auth.models", fromlist=["Permission"]).Permission
                                .objects.filter(codename="view_run"))
    Membership.objects.create(workspace=schedule.agent.workspace, user=viewer, role=Role.VIEWER)
    client.force_login(viewer)
    run = make_run(schedule, state=RunState.DEAD)
    assert 'replay/"' not in page(client, f"{RUNS}{run.pk}/change/")
    assert client.post(f"{RUNS}{run.pk}/replay/").status_code == 403
    assert Run.objects.get(pk=run.pk).state == RunState.DEAD


# --- the front page -----------------------------------------------------------------------

def test_the_front_page_is_tickwise_with_its_apps_first(staff_client, db):
    html = page(staff_client, "/admin/")
    assert "<title>Control room | Tickwise</title>" in html and "Django administration" not in html
    apps = re.findall(r'<caption>\s*<a href="/admin/(\w+)/"', html)
    assert apps.index("schedules") < apps.index("runs") < apps.index("workspaces") < apps.index("auth"), apps
    assert "Housekeeping results (last outcomes of the pulses; runs are in the ledger)" in html


def test_the_dashboard_counts_a_known_ledger(staff_client, schedule):
    now = timezone.now()
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=now + timedelta(minutes=30))
    failing = Schedule.objects.create(agent=schedule.agent, name="flaky", cron="* * * * *", consecutive_failures=2,
                                      next_fire_at=now + timedelta(days=1))
    Schedule.objects.create(agent=schedule.agent, name="stopped", cron="* * * * *", paused=True,
                            consecutive_failures=5, paused_reason="auto-paused after 5 consecutive failures")
    for state, count in ((RunState.SUCCEEDED, 3), (RunState.FAILED, 2), (RunState.DEAD, 1), (RunState.UNKNOWN, 1)):
        for _ in range(count):
            make_run(schedule, state=state, lateness_ms=100)
    make_run(schedule, state=RunState.DEAD, tick=now - timedelta(days=3))  # dead, but not in the last 24 h
    response = staff_client.get("/admin/")
    registry, ledger = response.context["registry"], response.context["ledger"]
    assert (registry.due_next_hour, registry.failing, registry.auto_paused, registry.paused) == (1, 1, 1, 1)
    assert (ledger.dead, ledger.unknown) == (2, 1)
    assert {k: v for k, v in ledger.states_24h.items() if v} == {"succeeded": 3, "failed": 2, "dead": 1, "unknown": 1}
    assert ledger.lateness_p95_ms == 100
    html = response.content.decode()
    assert 'id="tw-queue-dead" href="/admin/runs/run/?state__exact=dead"' in html
    assert f'<a href="/admin/schedules/schedule/{failing.pk}/change/">' in html
    assert "2 / limit 5" in html and "auto-paused after 5 consecutive failures" in html
    # The 24 hours' figures link to the runs they count.
    [link] = [row["url"] for row in response.context["states_24h"] if row["state"] == RunState.DEAD]
    assert len(listed_ids(page(staff_client, link))) == 1


def test_the_dashboard_query_count_does_not_grow_with_the_ledger(staff_client, schedule,
                                                                 django_assert_max_num_queries):
    now = timezone.now()
    for n in range(12):  # more than the lists show
        Schedule.objects.create(agent=schedule.agent, name=f"due-{n}", cron="* * * * *", consecutive_failures=1,
                                next_fire_at=now + timedelta(minutes=n + 1))
    for _ in range(5):
        make_run(schedule)
    with django_assert_max_num_queries(20) as few:
        page(staff_client, "/admin/")
    for _ in range(45):
        make_run(schedule, state=RunState.DEAD)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page(staff_client, "/admin/")


def test_a_member_sees_only_their_workspaces_figures(client, schedule):
    elsewhere = Agent.objects.create(name="theirs", workspace=Workspace.objects.create(slug="other", name="Other"))
    theirs = Schedule.objects.create(agent=elsewhere, name="x", cron="* * * * *")
    make_run(theirs, state=RunState.DEAD)
    make_run(schedule, state=RunState.SUCCEEDED)
    member = get_user_model().objects.create_user("member", password="pw", is_staff=True)
    Membership.objects.create(workspace=schedule.agent.workspace, user=member, role=Role.VIEWER)
    client.force_login(member)
    ledger = client.get("/admin/").context["ledger"]
    assert (ledger.dead, ledger.states_24h["succeeded"]) == (0, 1)


def test_the_dashboard_lists_open_alerts_not_resolved_ones(staff_client, db):
    from alerts.models import Alert

    now = timezone.now()
    common = {"opened_at": now, "last_raised_at": now, "notified_at": now}
    Alert.objects.create(kind="dlq_growth", key="dlq", title="12 runs in the dead-letter queue", **common)
    Alert.objects.create(kind="auto_pause", key="schedule:1", title="demo/nightly auto-paused", resolved_at=now,
                         **common)
    html = page(staff_client, "/admin/")
    assert "Dead-letter queue growing: 12 runs in the dead-letter queue" in html
    assert "demo/nightly" not in html


def test_the_dashboard_shows_each_pulse_with_its_last_outcome(staff_client, db):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask
    from django_celery_results.models import TaskResult

    from runs.pulses import ensure_pulses

    ensure_pulses(IntervalSchedule, PeriodicTask)
    PeriodicTask.objects.filter(task="runs.sweep_outbox").update(last_run_at=datetime(2026, 12, 1, 9, 0, 1, tzinfo=UTC))
    for n, result in enumerate(["0", "3"]):  # the newest is shown
        TaskResult.objects.create(task_id=f"t{n}", task_name="runs.sweep_outbox", status="SUCCESS", result=result,
                                  date_done=datetime(2026, 12, 1, 9, 0, n, tzinfo=UTC))
    pulses = {pulse.task: pulse for pulse in staff_client.get("/admin/").context["pulses"]}
    sweeper = pulses["runs.sweep_outbox"]
    assert (sweeper.last_status, sweeper.last_result) == ("SUCCESS", "3")
    assert pulses["runs.reap_leases"].last_status == "no result yet"
    assert "2026-12-01 09:00:01 UTC" in page(staff_client, "/admin/")


def test_the_run_page_lists_its_completion_deliveries(staff_client, schedule):
    from runs.outbound import OutboundDelivery

    run = make_run(schedule)
    OutboundDelivery.objects.create(run=run, url="https://hooks.example/done", webhook_id="msg_1",
                                    event_type="run.succeeded", payload={"secret": "not shown"}, status="delivered",
                                    attempts=1, last_status_code=204)
    html = page(staff_client, f"{RUNS}{run.pk}/change/")
    assert "https://hooks.example/done" in html and "msg_1" in html and "204" in html
    assert "not shown" not in html  # the body is on the delivery's own page


# --- the audit trail's names and times ------------------------------------------------------

def test_the_audit_trail_is_plural_and_its_times_carry_seconds_and_zone(staff_client, schedule):
    AuditEntry.objects.create(at=datetime(2026, 12, 1, 14, 0, 7, tzinfo=UTC), source="admin", object_type="run",
                              object_id=1, object_repr="run 1", action="replay")
    assert "Audit entries" in page(staff_client, "/admin/")
    assert "2026-12-01 14:00:07 UTC" in page(staff_client, "/admin/workspaces/auditentry/")
    entry = AuditEntry.objects.get()
    assert "2026-12-01 14:00:07 UTC" in page(staff_client, f"/admin/workspaces/auditentry/{entry.pk}/change/")
