"""The run pages and the front page (dashboard) in a real browser.

The replay and the dashboard's figures come from runs made by a real worker
against an HTTP agent server on loopback (503: a transient refusal, dead
after one attempt; 400: a permanent failure; 200: success).
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from runs.models import TERMINAL_STATES, AgentCall, Run, RunState, Trigger
from runs.services.manual import run_now
from schedules import services
from schedules.models import Agent, CreatorKind, Schedule
from tests.adapters.conftest import AgentServer, Reply
from tests.conftest import wait_for
from tests.shells.browser.conftest import find, text_of, wait_until
from workspaces.audit import Actor

NY = "America/New_York"


@pytest.fixture
def agent_server() -> Iterator[AgentServer]:
    server = AgentServer(Reply(body={"summary": "all good"})).start()
    yield server
    server.stop()


@pytest.fixture
def http_schedule(transactional_db, agent_server: AgentServer) -> Schedule:
    agent = Agent.objects.create(name="scout", adapter="http", config={"url": f"{agent_server.url}/run"})
    schedule = Schedule(agent=agent, name="checked", cron="0 9 * * 1-5", timezone=NY, max_attempts=1,
                        timeout_seconds=30, failure_limit=5)
    services.schedule_save(schedule, now=timezone.now())
    return schedule


def finished(schedule: Schedule, agent_server: AgentServer, status: int) -> Run:
    """One manual run answered with ``status``, waited for until the worker settles it."""
    agent_server.reply(status, {"summary": "all good"} if status == 200 else {"error": f"status {status}"})
    run = run_now(schedule, now=timezone.now())
    wait_for(lambda: Run.objects.get(pk=run.pk).state in TERMINAL_STATES, timeout=60,
             what=f"the worker to finish run {run.pk}")
    return Run.objects.get(pk=run.pk)


def rows(page: WebDriver) -> list[str]:
    return [row.text for row in page.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")]


def test_the_run_list_badges_filters_and_width(login, admin_url, transactional_db) -> None:
    # Long names, a skip reason and long errors: the widest a row gets.
    morning = Schedule.objects.create(agent=Agent.objects.create(name="weekly-reporter"),
                                      name="monday-morning-digest", cron="0 9 * * 1-5", timezone=NY)
    other = Schedule.objects.create(agent=Agent.objects.create(name="other"), name="evening", cron="0 18 * * *")
    tick = datetime(2026, 12, 1, 14, 0, 5, tzinfo=UTC)
    for n, (schedule, state) in enumerate([(morning, RunState.SUCCEEDED), (morning, RunState.DEAD),
                                           (other, RunState.FAILED), (other, RunState.UNKNOWN),
                                           (other, RunState.SKIPPED)]):
        Run.objects.create(schedule=schedule, agent=schedule.agent, trigger=Trigger.SCHEDULE, state=state,
                           tick_at=tick - timedelta(days=n), idempotency_key=f"k{n}", attempt=1,
                           skip_reason="dst_gap" if state == RunState.SKIPPED else "",
                           started_at=tick, finished_at=tick + timedelta(seconds=123),
                           error_message="" if state == RunState.SUCCEEDED else "agent said no " * 20)
    page = login()
    page.get(f"{admin_url}/admin/runs/run/")
    colours = {badge.text: badge.value_of_css_property("background-color")
               for badge in page.find_elements(By.CSS_SELECTOR, ".tw-state")}
    assert colours == {"Succeeded": "rgba(26, 127, 55, 1)", "Dead": "rgba(130, 7, 30, 1)",
                       "Failed": "rgba(207, 34, 46, 1)", "Unknown": "rgba(191, 135, 0, 1)",
                       "Skipped": "rgba(140, 149, 159, 1)"}, colours
    assert "2026-12-01 09:00:05 EST" in page.page_source
    # Every column fits at 1400 px: nothing past the right edge of the page or of the table's own scroller.
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert page.execute_script("const t = document.querySelector('#result_list');"
                               "return t.getBoundingClientRect().right <= window.innerWidth"
                               " && t.scrollWidth <= t.parentElement.clientWidth"), "the run list is wider than 1400 px"

    box = find(page, "input[name=schedule]")
    box.send_keys("weekly-reporter/monday-morning-digest")
    box.submit()
    wait_until(page, lambda d: "schedule=weekly-reporter%2Fmonday-morning-digest" in d.current_url,
               "the schedule filter to apply")
    assert len(rows(page)) == 2 and all("weekly-reporter/monday-morning-digest" in row for row in rows(page))
    page.find_element(By.LINK_TEXT, "Dead (dead-letter queue)").click()  # the state filter keeps the schedule's
    wait_until(page, lambda d: "state__exact=dead" in d.current_url, "the state filter to apply")
    [dead] = rows(page)
    assert "monday-morning-digest" in dead and "Dead" in dead
    page.find_element(By.CSS_SELECTOR, "#result_list tbody a[href*='/admin/schedules/schedule/']").click()
    wait_until(page, lambda d: d.current_url.endswith(f"/admin/schedules/schedule/{morning.pk}/change/"),
               "the schedule link to lead to the schedule's page")


def test_replay_of_a_dead_run_is_a_new_attempt_of_the_same_run(login, admin_url, http_schedule, agent_server,
                                                               worker) -> None:
    dead = finished(http_schedule, agent_server, 503)
    assert dead.state == RunState.DEAD, (dead.state, dead.error_message)
    page = login()
    page.get(f"{admin_url}/admin/runs/run/{dead.pk}/change/")
    assert text_of(page, "h1") == "View run" and not page.find_elements(By.NAME, "_save")
    assert "Dead (dead-letter queue)" in text_of(page, ".field-state_label")

    agent_server.reply(200, {"summary": "second time lucky"})
    find(page, "button.tw-replay").click()
    link = wait_until(page, lambda d: d.find_elements(By.CSS_SELECTOR, ".messagelist a[href*='/admin/runs/run/']"),
                      "the replay's message linking to the run")[0]  # type: ignore[index]
    assert link.text == f"run {dead.pk}"
    wait_for(lambda: Run.objects.get(pk=dead.pk).state == RunState.SUCCEEDED, timeout=60,
             what="the worker to run the replay")
    link.click()
    wait_until(page, lambda d: "Succeeded" in text_of(d, ".field-state_label"), "the run's page to say Succeeded")
    assert "second time lucky" in text_of(page, ".field-output_shown")
    attempts = [row.text for row in page.find_elements(By.CSS_SELECTOR, "table.tw-attempts tr")][1:]
    assert [row.split()[:2] for row in attempts] == [["1", "Failed"], ["2", "Succeeded"]], attempts
    assert Run.objects.count() == 1 and AgentCall.objects.filter(run_id=dead.pk).count() == 2
    assert not page.find_elements(By.CSS_SELECTOR, "button.tw-replay")  # a succeeded run is not replayed


def test_the_dashboard_shows_the_counts_of_a_known_sequence(login, admin_url, http_schedule, agent_server,
                                                            worker) -> None:
    outcomes = [finished(http_schedule, agent_server, status).state for status in (200, 200, 400, 503)]
    assert outcomes == [RunState.SUCCEEDED, RunState.SUCCEEDED, RunState.FAILED, RunState.DEAD], outcomes
    page = login()
    page.get(f"{admin_url}/admin/")
    assert page.title == "Control room | Tickwise" and text_of(page, "#site-name") == "Tickwise"

    def figure(css: str) -> str:
        return find(page, f"{css} strong").text

    assert (figure("#tw-24h-succeeded"), figure("#tw-24h-failed"), figure("#tw-24h-dead")) == ("2", "1", "1")
    assert (figure("#tw-queue-dead"), figure("#tw-queue-unknown")) == ("1", "0")
    assert figure("#tw-failing") == "1"  # two failures in a row, under the limit of 5
    assert "2 / limit 5" in text_of(page, "#tw-trouble")
    # The worker answers Celery's ping (a busy machine may need a second look).
    def worker_listed(driver: WebDriver) -> bool:
        driver.refresh()
        return text_of(driver, "#tw-workers").startswith("1: ")

    wait_until(page, worker_listed, "the dashboard to list the worker")
    find(page, "#tw-queue-dead").click()
    wait_until(page, lambda d: "state__exact=dead" in d.current_url, "the dead-letter queue's run list")
    [dead] = rows(page)
    assert "Dead" in dead and "checked" in dead


def chain_run(agent: Agent, minute: int, trigger: str, *, parent: Run | None = None,
              state: str = RunState.SUCCEEDED) -> Run:
    return Run.objects.create(agent=agent, trigger=trigger, state=state, chain_id="feed" * 8, parent_run=parent,
                              tick_at=datetime(2026, 12, 1, 9, minute, tzinfo=UTC), idempotency_key=f"chain-{minute}")


def test_the_run_page_shows_the_chain_as_a_tree_and_the_schedules_the_run_created(login, admin_url,
                                                                                  transactional_db) -> None:
    agent = Agent.objects.create(name="release-watcher")
    root = chain_run(agent, 0, Trigger.MANUAL)
    background = chain_run(agent, 1, Trigger.MANUAL, parent=root, state=RunState.RUNNING)
    resume = chain_run(agent, 2, Trigger.RESUME, parent=background, state=RunState.PENDING)
    wakeup = chain_run(agent, 3, Trigger.WAKEUP, parent=root, state=RunState.FAILED)
    now = timezone.now()

    def made(name: str, reason: str, **fields) -> Schedule:
        return Schedule.objects.create(agent=agent, name=name, creator_kind=CreatorKind.AGENT_RUN,
                                       origin_run_id=root.pk, origin_agent=agent, reason=reason, **fields)

    made("agent-hourly-deploy-check", "check the deploy of release 42 every hour until it is live everywhere",
         kind="interval", interval_seconds=3600, end_at=now + timedelta(days=7))
    services.schedule_delete(made("wakeup-1", "look again in 10 minutes", kind="once",
                                  run_at=now + timedelta(minutes=10)),
                             now=now, actor=Actor.system(), reason="the watched build process exited")

    page = login()
    page.get(f"{admin_url}/admin/runs/run/{background.pk}/change/")
    tree = find(page, ".field-chain_tree .readonly")

    def entry(run: Run) -> WebElement:
        return tree.find_element(By.CSS_SELECTOR, f"li[data-run='{run.pk}']")

    def runs_listed(under: WebElement) -> list[int]:
        """The runs of the list right under ``under`` (its own entries, not those nested in them)."""
        return [int(li.get_attribute("data-run") or 0) for li in under.find_elements(By.XPATH, "./ul/li")]

    def children(run: Run) -> list[int]:
        return runs_listed(entry(run))

    assert runs_listed(tree) == [root.pk], runs_listed(tree)
    assert children(root) == [background.pk, wakeup.pk]
    assert children(background) == [resume.pk] and children(resume) == children(wakeup) == []
    # This run: marked, and not a link to itself; every other entry links to its run's page.
    assert entry(background).find_element(By.XPATH, "./strong").get_attribute("class") == "tw-chain-current"
    assert "(this run)" in entry(background).text and not entry(background).find_elements(By.XPATH, "./a")
    for other in (root, resume, wakeup):
        [link] = entry(other).find_elements(By.XPATH, "./a")
        assert link.text == f"run {other.pk}"
        assert link.get_attribute("href") == f"{admin_url}/admin/runs/run/{other.pk}/change/"
    # Each level is indented past its parent, and siblings line up.
    left = {run: entry(run).location["x"] for run in (root, background, resume, wakeup)}
    assert left[root] < left[background] == left[wakeup] < left[resume], left
    assert [badge.text for badge in tree.find_elements(By.CSS_SELECTOR, ".tw-state")] == [
        "Succeeded", "Running", "Pending", "Failed"]
    assert text_of(page, ".field-schedules_created .readonly") == "none"
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

    entry(root).find_element(By.XPATH, "./a").click()
    wait_until(page, lambda d: d.current_url.endswith(f"/admin/runs/run/{root.pk}/change/"),
               "the chain's link to lead to the root's page")
    live, cancelled = [row.text for row in page.find_elements(By.CSS_SELECTOR,
                                                              ".field-schedules_created table.tw-created tr")][1:]
    assert "agent-hourly-deploy-check" in live and "active until" in live, live
    assert "wakeup-1 (deleted" in cancelled and "cancelled: the watched build process exited" in cancelled, cancelled
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    # Neither the instants nor a name of this length is broken across lines (both would break at a hyphen).
    assert page.execute_script("const unbroken = [...document.querySelectorAll("
                               "'table.tw-created td span, table.tw-created td > a:first-child')];"
                               "return unbroken.length === 3 && unbroken.every(s => s.getClientRects().length === 1)")
    # The table stays inside its fieldset.
    assert page.execute_script("const t = document.querySelector('table.tw-created');"
                               "return t.getBoundingClientRect().right"
                               " <= t.closest('fieldset').getBoundingClientRect().right")
