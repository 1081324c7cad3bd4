"""The schedule pages in a real browser, as a person uses them: create, read, run, pause.

Runs are made by a real worker against an HTTP agent server on loopback
that succeeds, refuses (a 400) or answers too late, so the health figures
on the page are the ledger's, not fixtures'.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from runs.models import TERMINAL_STATES, Run, RunState
from schedules import services
from schedules.models import Agent, Schedule
from tests.adapters.conftest import AgentServer, Reply
from tests.conftest import wait_for
from tests.shells.browser.conftest import find, text_of, wait_until

NY = "America/New_York"


@pytest.fixture
def agent(transactional_db) -> Agent:
    return Agent.objects.create(name="scout")


@pytest.fixture
def agent_server() -> Iterator[AgentServer]:
    server = AgentServer(Reply(body={"summary": "all good"})).start()
    yield server
    server.stop()


def change_url(admin_url: str, schedule: Schedule) -> str:
    return f"{admin_url}/admin/schedules/schedule/{schedule.pk}/change/"


def saved(name: str) -> Schedule:
    return Schedule.objects.select_related("agent").get(name=name, deleted_at__isnull=True)


def test_a_new_york_schedule_created_through_the_form(login, admin_url, agent) -> None:
    page = login()
    page.get(f"{admin_url}/admin/schedules/schedule/add/")
    # Only the chosen kind's fields are shown.
    assert find(page, ".form-row.field-cron").is_displayed()
    assert not find(page, ".form-row.field-interval_seconds").is_displayed()
    Select(find(page, "#id_kind")).select_by_value("interval")
    wait_until(page, lambda d: find(d, ".form-row.field-interval_seconds").is_displayed()
               and not find(d, ".form-row.field-cron").is_displayed(), "the interval fields to replace the cron field")
    Select(find(page, "#id_kind")).select_by_value("cron")
    Select(find(page, "#id_agent")).select_by_visible_text("scout")
    find(page, "#id_name").send_keys("weekday-report")
    find(page, "#id_cron").send_keys("0 9 * * 1-5")
    zone = find(page, "#id_timezone")
    assert zone.get_attribute("list") == "tw-timezones"
    zone.clear()
    zone.send_keys(NY)
    find(page, "input[name=_save]").click()
    wait_until(page, lambda d: d.current_url.rstrip("/").endswith("/admin/schedules/schedule"),
               "the list after the save")
    schedule = saved("weekday-report")
    assert (schedule.cron, schedule.timezone) == ("0 9 * * 1-5", NY)

    row = find(page, "#result_list tbody tr")
    local = schedule.next_fire_at.astimezone(ZoneInfo(NY))
    assert "At 09:00, Monday through Friday (America/New_York)" in row.text
    assert f"{local:%Y-%m-%d %H:%M:%S %Z} (America/New_York)" in row.text
    assert f"{schedule.next_fire_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" in row.text
    assert "Active" in row.text
    countdown = find(page, "#result_list .tw-countdown")
    first = countdown.text
    assert re.fullmatch(r"in \d+d \d+h \d\dm \d\ds|in \d+h \d\dm \d\ds|in \d+m \d\ds|in \d+s", first), first
    wait_until(page, lambda d: countdown.text != first, f"the countdown to move on from {first!r}", timeout=10)


def test_the_next_fires_show_the_dst_gap(login, admin_url, agent) -> None:
    schedule = Schedule(agent=agent, name="half-past-two", cron="30 2 * * *", timezone=NY,
                        start_at=datetime(2027, 3, 10, tzinfo=UTC))
    services.schedule_save(schedule, now=timezone.now())
    page = login()
    page.get(change_url(admin_url, schedule))
    upcoming = text_of(page, "#tw-upcoming")
    assert "02:30 on 14 Mar skipped: DST gap" in upcoming
    assert "2027-03-13 02:30:00 EST" in upcoming and "2027-03-13 07:30:00 UTC" in upcoming
    assert "2027-03-15 02:30:00 EDT" in upcoming and "2027-03-15 06:30:00 UTC" in upcoming


def run_now_from_the_page(page: WebDriver, admin_url: str, schedule: Schedule) -> Run:
    """Click Run now, follow the message's link to the run, and wait for the worker to finish it."""
    page.get(change_url(admin_url, schedule))
    find(page, "#tw-run-now").click()
    link = wait_until(page, lambda d: d.find_elements(By.CSS_SELECTOR, ".messagelist a[href*='/admin/runs/run/']"),
                      "the message linking to the new run")[0]  # type: ignore[index]
    run_id = int(re.search(r"/admin/runs/run/(\d+)/change/", link.get_attribute("href"))[1])  # type: ignore[index, arg-type]
    assert link.text == f"run {run_id}"
    run = Run.objects.get(pk=run_id)
    assert run.schedule_id == schedule.pk
    wait_for(lambda: Run.objects.get(pk=run_id).state in TERMINAL_STATES, timeout=60,
             what=f"the worker to finish run {run_id}")
    return Run.objects.get(pk=run_id)


def test_run_now_and_the_health_of_real_runs(login, admin_url, agent, agent_server, worker) -> None:
    Agent.objects.filter(pk=agent.pk).update(adapter="http", config={"url": f"{agent_server.url}/run"})
    schedule = Schedule(agent=Agent.objects.get(pk=agent.pk), name="checked", cron="0 9 * * 1-5", timezone=NY,
                        max_attempts=1, timeout_seconds=5, failure_limit=5)
    services.schedule_save(schedule, now=timezone.now())
    page = login()

    agent_server.reply(200, {"summary": "all good"})
    ok = run_now_from_the_page(page, admin_url, schedule)
    assert ok.state == RunState.SUCCEEDED, (ok.state, ok.error_message)
    # The message's link leads to the run's own page.
    find(page, ".messagelist a[href*='/admin/runs/run/']").click()
    wait_until(page, lambda d: d.current_url.endswith(f"/admin/runs/run/{ok.pk}/change/"), "the run's page")

    agent_server.reply(400, {"error": "bad request"})
    refused = run_now_from_the_page(page, admin_url, schedule)
    assert refused.state in (RunState.FAILED, RunState.DEAD) and refused.error_category == "agent_error"

    agent_server.reply(200, {"summary": "too late"}, delay=15)
    late = run_now_from_the_page(page, admin_url, schedule)
    assert late.state in (RunState.FAILED, RunState.DEAD, RunState.UNKNOWN), (late.state, late.error_message)
    assert late.error_category == "timeout", late.error_message

    page.get(change_url(admin_url, schedule))
    day = find(page, "#tw-health tr[data-window='24 h']")
    assert day.find_element(By.CSS_SELECTOR, ".tw-success").text == "33% · 1/3"
    failures = day.find_element(By.CSS_SELECTOR, ".tw-failures-by-category").text
    assert failures == "agent_error: 1, timeout: 1", failures
    assert text_of(page, "#tw-failures") == "2 / limit 5"
    runs = text_of(page, "#tw-recent-runs")
    for run in (ok, refused, late):
        assert f"run {run.pk}" in runs
    find(page, f"#tw-recent-runs a[href$='/admin/runs/run/{late.pk}/change/']")
    assert find(page, "#tw-all-runs").get_attribute("href").endswith(
        f"/admin/runs/run/?schedule__id__exact={schedule.pk}")


def test_pause_with_a_reason_shows_in_the_status(login, admin_url, agent) -> None:
    schedule = Schedule(agent=agent, name="pausable", cron="*/5 * * * *", timezone=NY)
    services.schedule_save(schedule, now=timezone.now())
    page = login()
    page.get(change_url(admin_url, schedule))
    find(page, "#tw-pause-reason").send_keys("vendor maintenance until Friday")
    find(page, "#tw-pause").click()
    wait_until(page, lambda d: "Paused" in text_of(d, ".messagelist"), "the pause's message")
    assert "Paused by root: vendor maintenance until Friday" in text_of(page, "#tw-status")
    page.get(f"{admin_url}/admin/schedules/schedule/")
    row = find(page, "#result_list tbody tr")
    assert "Paused by root: vendor maintenance until Friday" in row.text
    assert "- (paused)" in row.text and not row.find_elements(By.CSS_SELECTOR, ".tw-countdown")
    page.get(change_url(admin_url, schedule))
    find(page, "#tw-resume").click()
    wait_until(page, lambda d: "Resumed" in text_of(d, ".messagelist"), "the resume's message")
    assert "Active" in text_of(page, "#tw-status")
    assert not Schedule.objects.get(pk=schedule.pk).paused
