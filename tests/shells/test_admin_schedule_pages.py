"""The schedule and agent pages: what a person reads on them, and what their buttons do."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from adapters import AdapterError, adapter_for
from runs.health import runs_health
from runs.models import Run, RunState, Trigger
from schedules import services
from schedules.models import AdapterKind, Agent, Schedule
from shells.admin.cadence import cron_words, interval_words, until_words
from workspaces.audit import Actor
from workspaces.models import AuditEntry, Membership, Role, Workspace

LIST = "/admin/schedules/schedule/"
CHANGE = "/admin/schedules/schedule/{}/change/"
NY = "America/New_York"
_keys = count()


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def staff_client(client, root):
    client.force_login(root)
    return client


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="scout")


def make_schedule(agent: Agent, name: str, **fields) -> Schedule:
    schedule = Schedule(agent=agent, name=name, **{"cron": "0 9 * * 1-5", "timezone": NY, **fields})
    services.schedule_save(schedule, now=timezone.now())
    return schedule


def make_run(schedule: Schedule, state: str, *, ago: timedelta = timedelta(hours=1), **fields) -> Run:
    tick = timezone.now() - ago
    return Run.objects.create(schedule=schedule, agent=schedule.agent, trigger=Trigger.MANUAL, tick_at=tick,
                              state=state, idempotency_key=f"test-{next(_keys)}", **fields)


def page_text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# --- words -------------------------------------------------------------------

def test_cadence_in_words() -> None:
    assert cron_words("0 9 * * 1-5") == "At 09:00, Monday through Friday"
    assert cron_words("*/15 * * * *") == "Every 15 minutes"
    assert cron_words("@daily") == "At 00:00"
    assert interval_words(900) == "Every 15 minutes"
    assert interval_words(3600) == "Every hour"
    assert interval_words(5400) == "Every 90 minutes"
    assert interval_words(61) == "Every 61 seconds"


def test_countdown_words() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert until_words(now + timedelta(seconds=9), now=now) == "in 9s"
    assert until_words(now + timedelta(hours=2, minutes=5, seconds=9), now=now) == "in 2h 05m 09s"
    assert until_words(now + timedelta(days=3, hours=1), now=now) == "in 3d 1h 00m 00s"
    assert until_words(now - timedelta(seconds=1), now=now) == "due now"


# --- the list ----------------------------------------------------------------

def test_the_list_answers_how_each_schedule_is_doing(staff_client, agent, root) -> None:
    active = make_schedule(agent, "weekdays")
    paused = make_schedule(agent, "quiet", kind="interval", cron="", interval_seconds=900)
    services.schedule_pause(paused, reason="vendor outage", now=timezone.now(),
                            actor=Actor(source="admin", user_id=root.pk))
    tired = make_schedule(agent, "flaky", failure_limit=3)
    services.schedule_pause(tired, reason="auto-paused after 3 consecutive failures", now=timezone.now())
    for state in (RunState.SUCCEEDED, RunState.SUCCEEDED, RunState.FAILED):
        make_run(active, state)
    make_run(active, RunState.SKIPPED, skip_reason="overlap")
    make_run(active, RunState.SUCCEEDED, ago=timedelta(days=3))  # outside the 24 h window
    page = staff_client.get(LIST).content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "At 09:00, Monday through Friday (America/New_York)" in text
    assert "Every 15 minutes" in text
    assert "Paused by root: vendor outage" in text
    assert 'tw-auto-paused">Auto-paused' in page and "auto-paused after 3 consecutive failures" in text
    assert "67% · 2/3" in text  # the skip is not rated, the old success is outside the window
    assert re.search(r'class="tw-countdown" data-at="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">in ', page)
    # The next fire is the schedule's wall clock with its zone, and UTC beside it.
    local = active.next_fire_at.astimezone(ZoneInfo(NY))
    assert f"{local:%Y-%m-%d %H:%M:%S %Z} (America/New_York) = {active.next_fire_at:%Y-%m-%d %H:%M:%S} UTC" in text
    # A paused schedule shows no next fire, past or future.
    row = next(line for line in page.split("<tr") if "quiet" in line)
    assert "tw-countdown" not in row and "- (paused)" in row
    assert 'href="/admin/runs/run/' in page  # the last run links to its page


@pytest.mark.parametrize("rows", [5, 50])
def test_the_list_costs_the_same_queries_however_many_schedules(staff_client, agent, rows,
                                                                django_assert_max_num_queries) -> None:
    for index in range(rows):
        schedule = make_schedule(agent, f"s{index}")
        make_run(schedule, RunState.SUCCEEDED)
        make_run(schedule, RunState.FAILED)
    with django_assert_max_num_queries(12):
        response = staff_client.get(LIST)
    assert response.status_code == 200 and "50% · 1/2" in page_text(response)


# --- the change page ---------------------------------------------------------

def test_the_add_form_has_fieldsets_and_no_runtime_fields(staff_client, agent) -> None:
    response = staff_client.get("/admin/schedules/schedule/add/")
    page = response.content.decode()
    form = response.context["adminform"].form
    for heading in ("When", "What", "Policies", "Retries and timeouts", "Advanced"):
        assert f">{heading}<" in page, heading
    runtime = {"paused", "paused_reason", "consecutive_failures", "run_count", "version", "next_fire_at",
               "next_tick_at", "last_tick_at", "finished_at", "finished_reason", "created_by", "session_id"}
    assert runtime.isdisjoint(form.fields), runtime & set(form.fields)
    assert "Next fire" not in page_text(response)
    assert 'list="tw-timezones"' in page and '<option value="America/New_York">' in page
    assert "{{day_of_week}}" in page  # the template's variables, up front
    for name in ("missed_policy", "overlap_policy", "max_concurrent", "concurrency_scope", "failure_limit",
                 "timeout_seconds", "max_attempts", "retry_backoff_seconds", "retry_backoff_max_seconds",
                 "missed_grace_seconds", "replay_cap", "dst_gap", "dst_fold"):
        assert form.fields[name].help_text, name


def test_the_change_page_shows_next_fires_with_dst_notes(staff_client, agent) -> None:
    schedule = make_schedule(agent, "gap", cron="30 2 * * *", start_at=datetime(2027, 3, 10, tzinfo=UTC))
    text = page_text(staff_client.get(CHANGE.format(schedule.pk)))
    assert "2027-03-13 02:30:00 EST" in text and "2027-03-13 07:30:00 UTC" in text
    assert "2027-03-14 02:30:00 (does not exist)" in text and "02:30 on 14 Mar skipped: DST gap" in text
    assert "2027-03-15 02:30:00 EDT" in text and "2027-03-15 06:30:00 UTC" in text


def test_the_change_page_shows_health_runs_and_the_next_input(staff_client, agent) -> None:
    schedule = make_schedule(agent, "daily", input_template="Report for {{date}} ({{day_of_week}})",
                             failure_limit=5)
    Schedule.objects.filter(pk=schedule.pk).update(consecutive_failures=3)
    start = timezone.now() - timedelta(hours=2)
    ok = make_run(schedule, RunState.SUCCEEDED, started_at=start, finished_at=start + timedelta(seconds=2),
                  output={"summary": "all good"})
    make_run(schedule, RunState.FAILED, error_category="timeout", error_message="no answer within 5s")
    make_run(schedule, RunState.DEAD, ago=timedelta(days=3), error_category="agent_error")
    response = staff_client.get(CHANGE.format(schedule.pk))
    page, text = response.content.decode(), page_text(response)
    health = re.findall(r'<tr data-window="([^"]+)"><th>[^<]*</th><td class="tw-success">([^<]*)</td>'
                        r'<td class="tw-failures-by-category">([^<]*)</td>', page)
    assert health == [("24 h", "50% · 1/2", "timeout: 1"), ("7 d", "33% · 1/3", "agent_error: 1, timeout: 1"),
                      ("30 d", "33% · 1/3", "agent_error: 1, timeout: 1")], health
    assert "3 / limit 5" in text
    assert f'href="/admin/runs/run/{ok.pk}/change/"' in page and "all good" in text
    assert f'href="/admin/runs/run/?schedule__id__exact={schedule.pk}"' in page and "View all runs" in text
    local = schedule.next_tick_at.astimezone(ZoneInfo(NY))
    assert f"Report for {local:%Y-%m-%d} ({local:%A})" in text


# --- the buttons -------------------------------------------------------------

def test_run_now_from_the_page_starts_a_run_and_links_to_it(staff_client, agent, root) -> None:
    schedule = make_schedule(agent, "button")
    response = staff_client.post(f"/admin/schedules/schedule/{schedule.pk}/run-now/")
    assert response.status_code == 302 and response["Location"] == CHANGE.format(schedule.pk)
    run = Run.objects.get(schedule=schedule)
    assert (run.trigger, run.started_by_id) == (Trigger.MANUAL, root.pk)
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    assert shown == [f'Started <a href="/admin/runs/run/{run.pk}/change/">run {run.pk}</a> of scout/button.']
    entry = AuditEntry.objects.get(object_type="schedule", object_id=schedule.pk, action="run_now")
    assert (entry.source, entry.user_id) == ("admin", root.pk)


def test_pause_with_a_reason_then_resume(staff_client, agent, root) -> None:
    schedule = make_schedule(agent, "toggle")
    response = staff_client.post(f"/admin/schedules/schedule/{schedule.pk}/pause/", {"reason": "  vendor\n down "})
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.paused and schedule.paused_reason == "vendor down"
    text = page_text(staff_client.get(CHANGE.format(schedule.pk)))
    assert "Paused by root: vendor down" in text and "Resume" in text
    staff_client.post(f"/admin/schedules/schedule/{schedule.pk}/resume/")
    schedule.refresh_from_db()
    assert not schedule.paused and schedule.next_fire_at is not None
    actions = list(AuditEntry.objects.filter(object_type="schedule", object_id=schedule.pk, source="admin")
                   .order_by("id").values_list("action", "user_id"))
    assert actions[-2:] == [("pause", root.pk), ("resume", root.pk)]


def test_the_buttons_take_only_posts_from_operators(client, agent) -> None:
    schedule = make_schedule(agent, "guarded")
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_schedule", "change_schedule"]))
    Membership.objects.create(workspace=Workspace.objects.get(pk=agent.workspace_id), user=viewer, role=Role.VIEWER)
    client.force_login(viewer)
    assert client.get(f"/admin/schedules/schedule/{schedule.pk}/run-now/").status_code == 405
    assert client.post(f"/admin/schedules/schedule/{schedule.pk}/run-now/").status_code == 403
    assert client.post(f"/admin/schedules/schedule/{schedule.pk}/pause/", {"reason": "x"}).status_code == 403
    assert not Run.objects.exists() and not Schedule.objects.get(pk=schedule.pk).paused
    assert 'id="tw-run-now"' not in client.get(CHANGE.format(schedule.pk)).content.decode()


# --- agents ------------------------------------------------------------------

def test_agent_config_is_a_form_per_adapter(staff_client) -> None:
    page = staff_client.get("/admin/schedules/agent/add/").content.decode()
    assert "tw-adapter-openai" in page and 'name="cfg_openai_model"' in page
    assert "The model name, e.g. gpt-4o-mini." in page
    response = staff_client.post("/admin/schedules/agent/add/", {
        "workspace": Workspace.objects.get().pk, "name": "chat", "adapter": "openai", "is_active": "on",
        "cfg_openai_model": "", "cfg_http_url": "http://ignored.example"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "cfg_openai_model" in errors and "config['model'] is required" in errors["cfg_openai_model"][0]
    response = staff_client.post("/admin/schedules/agent/add/", {
        "workspace": Workspace.objects.get().pk, "name": "hook", "adapter": "http", "is_active": "on",
        "cfg_http_url": "http://127.0.0.1:9/run", "cfg_http_timeout": "5", "cfg_http_headers": '{"X-Team": "ops"}',
        "cfg_openai_model": "ignored", "extra_config": '{"note": "kept"}'})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Agent.objects.get(name="hook").config == {"url": "http://127.0.0.1:9/run", "timeout": 5,
                                                     "headers": {"X-Team": "ops"}, "note": "kept"}


def test_the_agent_page_lists_its_schedules_runs_and_health(staff_client, agent) -> None:
    schedule = make_schedule(agent, "morning")
    run = make_run(schedule, RunState.SUCCEEDED)
    make_run(schedule, RunState.FAILED, error_category="agent_error")
    response = staff_client.get(f"/admin/schedules/agent/{agent.pk}/change/")
    page, text = response.content.decode(), page_text(response)
    assert f'href="/admin/schedules/schedule/{schedule.pk}/change/"' in page
    assert "At 09:00, Monday through Friday" in text and "Active" in text
    assert f'href="/admin/runs/run/{run.pk}/change/"' in page
    assert '<td class="tw-success">50% · 1/2</td>' in page


# --- the plans: health and the list read the ledger through run_history_idx ---

def explained(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def big_ledger(agent) -> list[Schedule]:
    """4 schedules with 15,000 runs each over 31 days, analysed: enough rows for the planner to choose.

    Inserted oldest first and interleaved, as the beat writes them, so the
    table's physical order is by time, not by schedule.
    """
    schedules = [make_schedule(agent, f"big{index}") for index in range(4)]
    now, states = timezone.now(), [RunState.SUCCEEDED] * 8 + [RunState.FAILED, RunState.DEAD]
    Run.objects.bulk_create(
        [Run(schedule=schedule, agent=agent, trigger=Trigger.SCHEDULE, tick_at=now - timedelta(minutes=3 * n),
             state=states[n % 10], idempotency_key=f"big-{schedule.pk}-{n}", lateness_ms=n % 500,
             started_at=now - timedelta(minutes=3 * n), finished_at=now - timedelta(minutes=3 * n - 1))
         for n in reversed(range(15_000)) for schedule in schedules], batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Run._meta.db_table}")
    return schedules


def test_health_and_the_list_read_the_run_history_index(staff_client, big_ledger) -> None:
    with CaptureQueriesContext(connection) as health:
        runs_health([big_ledger[0].pk], window="7 d", now=timezone.now())
    with CaptureQueriesContext(connection) as listing:
        assert staff_client.get(LIST).status_code == 200
    plans = [explained(query["sql"]) for query in health.captured_queries]
    plans += [explained(query["sql"]) for query in listing.captured_queries if "runs_run" in query["sql"]]
    assert len(plans) >= 3, plans
    for plan in plans:
        assert "run_history_idx" in plan and "Seq Scan on runs_run" not in plan, plan


def test_the_all_runs_links_filter_the_run_list(staff_client, agent) -> None:
    schedule, other = make_schedule(agent, "mine"), make_schedule(agent, "other")
    mine, theirs = make_run(schedule, RunState.SUCCEEDED), make_run(other, RunState.SUCCEEDED)
    links = (f"/admin/runs/run/?schedule__id__exact={schedule.pk}", f"/admin/runs/run/?agent__id__exact={agent.pk}")
    for link in links:
        response = staff_client.get(link)
        assert response.status_code == 200, (link, response.status_code, response.get("Location"))
        shown = {run.pk for run in response.context["cl"].result_list}
        assert mine.pk in shown, link
    assert theirs.pk not in {run.pk for run in staff_client.get(
        f"/admin/runs/run/?schedule__id__exact={schedule.pk}").context["cl"].result_list}


# --- the adapters' declared config fields agree with their checks -------------

SAMPLES = {"text": "x", "textarea": "line one\nline two", "url": "http://127.0.0.1:9/run", "env": "SOME_VAR",
           "number": 5, "object": {}}


@pytest.mark.parametrize("kind", AdapterKind.values)
def test_each_adapters_declared_fields_pass_its_own_check(kind) -> None:
    adapter = adapter_for(kind)
    declared = {field.name: field for field in adapter.config_fields}
    assert len(declared) == len(adapter.config_fields), "a key declared twice"
    config = {name: field.choices[0] if field.choices else SAMPLES[field.type] for name, field in declared.items()}
    if kind == "python":
        config["callable"] = "adapters.examples:echo_context"
    config.pop("url_env", None)  # url_env and url are alternatives; url is given
    adapter.validate_config(config)
    for name, field in declared.items():
        if field.required:
            with pytest.raises(AdapterError, match=name):
                adapter.validate_config({key: value for key, value in config.items() if key != name})
