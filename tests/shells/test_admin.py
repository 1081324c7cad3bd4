"""The admin: pages render, actions go through the services."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django import forms
from django.contrib.auth import get_user_model

from runs.models import Run, Trigger
from schedules.models import Agent, Schedule
from schedules.selectors import schedule_lookup


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def schedule(db):
    agent = Agent.objects.create(name="demo")
    return Schedule.objects.create(agent=agent, name="minutely", cron="* * * * *")


@pytest.mark.parametrize("url", ["/admin/schedules/schedule/", "/admin/schedules/agent/", "/admin/runs/run/",
                                 "/admin/schedules/schedule/add/", "/admin/django_celery_beat/periodictask/"])
def test_pages_render(staff_client, schedule, url):
    assert staff_client.get(url).status_code == 200


def act(client, action, schedule):
    return client.post("/admin/schedules/schedule/", {"action": action, "_selected_action": [schedule.pk]})


def test_pause_resume_and_run_now_actions(staff_client, schedule, django_capture_on_commit_callbacks):
    act(staff_client, "pause_selected", schedule)
    schedule.refresh_from_db()
    assert schedule.paused
    with django_capture_on_commit_callbacks():
        act(staff_client, "run_now_selected", schedule)
    assert Run.objects.get(schedule=schedule).trigger == Trigger.MANUAL
    act(staff_client, "resume_selected", schedule)
    schedule.refresh_from_db()
    assert not schedule.paused and schedule.next_fire_at is not None


def test_run_now_of_an_inactive_agent_is_a_warning_not_an_error(staff_client, schedule):
    other = Schedule.objects.create(agent=Agent.objects.create(name="busy"), name="hourly", cron="0 * * * *")
    Agent.objects.filter(pk=schedule.agent.pk).update(is_active=False)
    response = staff_client.post("/admin/schedules/schedule/", {
        "action": "run_now_selected", "_selected_action": [schedule.pk, other.pk]}, follow=True)
    shown = [str(message) for message in response.context["messages"]]
    assert shown == ["agent 'demo' is inactive: activate it to run demo/minutely", "Started 1 run(s)."], shown
    assert list(Run.objects.values_list("schedule_id", flat=True)) == [other.pk]


def test_bad_cron_in_the_form_is_an_error_and_saves_nothing(staff_client, schedule):
    response = staff_client.post(f"/admin/schedules/schedule/{schedule.pk}/change/", {
        "agent": schedule.agent.pk, "name": "minutely", "kind": "cron", "cron": "0 0 30 2 *",
        "timezone": "UTC", "dst_gap": "skip", "dst_fold": "first", "jitter_seconds": 0,
        "interval_mode": "fixed_rate", "missed_policy": "skip", "missed_grace_seconds": 60, "replay_cap": 100,
        "overlap_policy": "skip", "max_concurrent": 1, "concurrency_scope": "schedule", "timeout_seconds": 300,
        "max_attempts": 3, "retry_backoff_seconds": 10, "retry_backoff_max_seconds": 600,
        "session_mode": "new", "failure_limit": 5, "loaded_version": 1,
    })
    assert response.status_code == 200 and b"February" in response.content
    schedule.refresh_from_db()
    assert schedule.cron == "* * * * *" and schedule.version == 1


def test_agent_form_rejects_bad_adapter_config(staff_client):
    response = staff_client.post("/admin/schedules/agent/add/", {
        "name": "chat", "adapter": "openai", "config": "{}", "is_active": "on"})
    assert response.status_code == 200 and b"model" in response.content
    assert not Agent.objects.filter(name="chat").exists()


# --- helpers: a form as the browser posts it back

NY = "America/New_York"
CHANGE = "/admin/schedules/schedule/{}/change/"


def as_loaded(client, url: str) -> dict[str, str]:
    """The fields of the admin form at ``url``, as a browser would post them back unchanged."""
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field.widget, forms.CheckboxInput):
            if value:
                data[name] = "on"
        elif value is None:
            data[name] = ""
        elif isinstance(field.widget, forms.DateTimeInput):
            data[name] = field.widget.format_value(value) or ""
        else:
            data[name] = str(value)
    return data


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def one_shot(db):
    agent = Agent.objects.create(name="reminder")
    return Schedule.objects.create(agent=agent, name="standup", kind="once", cron="", timezone=NY,
                                   run_at=utc("2030-12-02 14:00"))


def fresh(schedule: Schedule) -> Schedule:
    return Schedule.objects.get(pk=schedule.pk)


# --- wall-clock times in the schedule's zone (item 10)

def test_the_change_form_shows_times_in_the_schedules_zone(staff_client, one_shot):
    page = staff_client.get(CHANGE.format(one_shot.pk)).content.decode()
    assert "Run at (America/New_York)" in page
    assert 'value="2030-12-02 09:00:00"' in page
    assert "Stored: 2030-12-02 09:00:00 EST = 2030-12-02 14:00:00 UTC." in page
    assert "Start at (America/New_York)" in page and "End at (America/New_York)" in page


def test_a_typed_run_at_is_read_in_the_schedules_zone(staff_client, one_shot):
    data = as_loaded(staff_client, CHANGE.format(one_shot.pk))
    data["run_at"] = "2030-12-03 09:30"
    assert staff_client.post(CHANGE.format(one_shot.pk), data).status_code == 302
    assert fresh(one_shot).run_at == utc("2030-12-03 14:30")


def test_a_new_one_shot_is_read_in_the_zone_chosen_on_the_same_form(staff_client, one_shot):
    data = as_loaded(staff_client, "/admin/schedules/schedule/add/")
    data.update(agent=str(one_shot.agent.pk), name="retro", kind="once", cron="", timezone="Europe/Berlin",
                run_at="2030-07-01 09:00", start_at="", end_at="")
    response = staff_client.post("/admin/schedules/schedule/add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Schedule.objects.get(name="retro").run_at == utc("2030-07-01 07:00")


def test_the_window_is_read_in_the_zone_too(staff_client, one_shot):
    data = as_loaded(staff_client, CHANGE.format(one_shot.pk))
    data.update(start_at="2030-12-01 00:00", end_at="2030-12-31 23:59:59")
    assert staff_client.post(CHANGE.format(one_shot.pk), data).status_code == 302
    saved = fresh(one_shot)
    assert (saved.start_at, saved.end_at) == (utc("2030-12-01 05:00"), utc("2031-01-01 04:59:59"))


def test_a_time_in_the_spring_gap_is_refused_under_skip_and_shifted_under_shift(staff_client, one_shot):
    data = as_loaded(staff_client, CHANGE.format(one_shot.pk))
    data["run_at"] = "2030-03-10 02:30"
    response = staff_client.post(CHANGE.format(one_shot.pk), data)
    assert response.status_code == 200
    assert "2030-03-10 02:30 does not exist in America/New_York" in response.content.decode()
    assert fresh(one_shot).run_at == utc("2030-12-02 14:00")
    data["dst_gap"] = "shift"
    assert staff_client.post(CHANGE.format(one_shot.pk), data).status_code == 302
    assert fresh(one_shot).run_at == utc("2030-03-10 07:00")


def test_a_time_in_the_fall_fold_follows_dst_fold(staff_client, one_shot):
    data = as_loaded(staff_client, CHANGE.format(one_shot.pk))
    data.update(run_at="2030-11-03 01:30", dst_fold="last")
    assert staff_client.post(CHANGE.format(one_shot.pk), data).status_code == 302
    assert fresh(one_shot).run_at == utc("2030-11-03 06:30")
    # Under dst_fold=first (set elsewhere), an untouched form saved again keeps the second pass it holds.
    Schedule.objects.filter(pk=one_shot.pk).update(dst_fold="first")
    again = as_loaded(staff_client, CHANGE.format(one_shot.pk))
    assert again["run_at"] == "2030-11-03 01:30:00"
    assert staff_client.post(CHANGE.format(one_shot.pk), again).status_code == 302
    assert fresh(one_shot).run_at == utc("2030-11-03 06:30")


def test_an_untouched_time_keeps_its_exact_instant(staff_client, one_shot):
    Schedule.objects.filter(pk=one_shot.pk).update(run_at=utc("2030-12-02 14:00:00.123456"))
    data = as_loaded(staff_client, CHANGE.format(one_shot.pk))
    data["input_template"] = "standup"
    assert staff_client.post(CHANGE.format(one_shot.pk), data).status_code == 302
    assert fresh(one_shot).run_at == utc("2030-12-02 14:00:00.123456")


def test_changing_the_zone_rereads_the_wall_clock_time(staff_client, one_shot):
    data = as_loaded(staff_client, CHANGE.format(one_shot.pk))
    data["timezone"] = "Asia/Kolkata"
    assert staff_client.post(CHANGE.format(one_shot.pk), data).status_code == 302
    assert fresh(one_shot).run_at == utc("2030-12-02 03:30")


def test_an_explicit_offset_is_taken_as_typed(staff_client, one_shot):
    data = as_loaded(staff_client, CHANGE.format(one_shot.pk))
    data["run_at"] = "2030-12-02T09:00:00+01:00"
    assert staff_client.post(CHANGE.format(one_shot.pk), data).status_code == 302
    assert fresh(one_shot).run_at == utc("2030-12-02 08:00")


@pytest.mark.parametrize(("typed", "says"), [
    ("0001-01-01 00:00", "is outside the supported range"),
    ("2030-02-30 09:00", "Enter a valid date/time."),
    ("tomorrow", "Enter a valid date/time."),
])
def test_bad_times_are_form_errors(staff_client, one_shot, typed, says):
    data = as_loaded(staff_client, CHANGE.format(one_shot.pk))
    data["run_at"] = typed
    response = staff_client.post(CHANGE.format(one_shot.pk), data)
    assert response.status_code == 200 and says in response.content.decode()
    assert fresh(one_shot).run_at == utc("2030-12-02 14:00")


def test_a_bad_zone_is_one_error_and_saves_nothing(staff_client, one_shot):
    data = as_loaded(staff_client, CHANGE.format(one_shot.pk))
    data.update(timezone="Mars/Base", run_at="2030-12-03 09:00", start_at="2030-12-01 00:00")
    response = staff_client.post(CHANGE.format(one_shot.pk), data)
    assert response.status_code == 200 and "unknown zone" in response.content.decode()
    assert (fresh(one_shot).run_at, fresh(one_shot).timezone) == (utc("2030-12-02 14:00"), NY)


def test_next_fire_is_shown_with_its_zone(staff_client, one_shot):
    Schedule.objects.filter(pk=one_shot.pk).update(next_fire_at=utc("2030-12-02 14:00"))
    listing = staff_client.get("/admin/schedules/schedule/").content.decode()
    assert "2030-12-02 09:00:00 EST (America/New_York) = 2030-12-02 14:00:00 UTC" in listing


# --- optimistic versions (item 19)

def test_a_stale_form_is_refused_and_the_first_edit_kept(staff_client, schedule):
    first = as_loaded(staff_client, CHANGE.format(schedule.pk))
    second = as_loaded(staff_client, CHANGE.format(schedule.pk))
    assert first["loaded_version"] == second["loaded_version"] == "1"
    first["cron"] = "*/5 * * * *"
    assert staff_client.post(CHANGE.format(schedule.pk), first).status_code == 302
    assert (fresh(schedule).cron, fresh(schedule).version) == ("*/5 * * * *", 2)
    second["cron"] = "0 * * * *"
    response = staff_client.post(CHANGE.format(schedule.pk), second)
    assert response.status_code == 200
    page = response.content.decode()
    assert "it is now at version 2, this page was loaded at version 1" in page and "reload the page" in page
    assert (fresh(schedule).cron, fresh(schedule).version) == ("*/5 * * * *", 2)
    reloaded = as_loaded(staff_client, CHANGE.format(schedule.pk))
    reloaded["cron"] = "0 * * * *"
    assert staff_client.post(CHANGE.format(schedule.pk), reloaded).status_code == 302
    assert (fresh(schedule).cron, fresh(schedule).version) == ("0 * * * *", 3)


def test_a_change_without_the_loaded_version_is_refused(staff_client, schedule):
    data = as_loaded(staff_client, CHANGE.format(schedule.pk))
    del data["loaded_version"]
    data["cron"] = "0 * * * *"
    response = staff_client.post(CHANGE.format(schedule.pk), data)
    assert response.status_code == 200 and "reload the page" in response.content.decode()
    assert fresh(schedule).cron == "* * * * *"


# --- soft delete (item 18)

def add_runs(schedule: Schedule, count: int) -> list[Run]:
    return [Run.objects.create(schedule=schedule, agent=schedule.agent, trigger=Trigger.SCHEDULE,
                               tick_at=utc("2026-01-01 00:00") + timedelta(minutes=i), state="succeeded",
                               idempotency_key=f"k{i}") for i in range(count)]


def test_a_schedule_that_has_run_is_soft_deleted_from_its_page(staff_client, schedule):
    runs = add_runs(schedule, 3)
    url = f"/admin/schedules/schedule/{schedule.pk}/delete/"
    confirm = staff_client.get(url)
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "permission" not in page
    assert "its 3 run(s) stay in the ledger" in page
    assert staff_client.post(url, {"post": "yes"}).status_code == 302
    gone = fresh(schedule)
    assert gone.deleted_at is not None and gone.next_fire_at is None
    assert set(Run.objects.filter(schedule=gone)) == set(runs)
    assert staff_client.get(CHANGE.format(schedule.pk)).status_code == 302  # "doesn't exist", back to the list


def test_the_delete_action_soft_deletes_too(staff_client, schedule):
    add_runs(schedule, 2)
    selected = {"action": "delete_selected", "_selected_action": [schedule.pk]}
    confirm = staff_client.post("/admin/schedules/schedule/", selected)
    assert confirm.status_code == 200 and "permission" not in confirm.content.decode()
    assert staff_client.post("/admin/schedules/schedule/", {**selected, "post": "yes"}).status_code == 302
    assert fresh(schedule).deleted_at is not None and Run.objects.filter(schedule=schedule).count() == 2


def test_a_deleted_name_goes_to_a_new_schedule(staff_client, schedule):
    old_runs = add_runs(schedule, 1)
    staff_client.post(f"/admin/schedules/schedule/{schedule.pk}/delete/", {"post": "yes"})
    data = as_loaded(staff_client, "/admin/schedules/schedule/add/")
    data.update(agent=str(schedule.agent.pk), name="minutely", cron="0 * * * *")
    assert staff_client.post("/admin/schedules/schedule/add/", data).status_code == 302
    new = Schedule.objects.live().get(agent=schedule.agent, name="minutely")
    assert new.pk != schedule.pk and new.version == 1
    assert schedule_lookup("demo/minutely") == new
    assert Run.objects.get(pk=old_runs[0].pk).schedule_id == schedule.pk
    # The name is taken again: a second live schedule of that name is refused.
    again = staff_client.post("/admin/schedules/schedule/add/", data)
    assert again.status_code == 200 and "already exists" in again.content.decode()
