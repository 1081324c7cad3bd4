"""The agent pages in a real browser: config as a form per adapter, and the agent's schedules and health."""
from __future__ import annotations

from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from runs.models import Run, RunState, Trigger
from schedules import services
from schedules.models import Agent, Schedule
from tests.shells.browser.conftest import find, text_of, wait_until


def test_config_is_asked_per_adapter_and_checked_by_it(login, admin_url) -> None:
    page = login()
    page.get(f"{admin_url}/admin/schedules/agent/add/")
    find(page, "#id_name").send_keys("chat")
    Select(find(page, "#id_adapter")).select_by_value("openai")
    wait_until(page, lambda d: find(d, "fieldset.tw-adapter-openai").is_displayed()
               and not find(d, "fieldset.tw-adapter-http").is_displayed(), "only the openai fields to show")
    assert "The model name, e.g. gpt-4o-mini." in text_of(page, "fieldset.tw-adapter-openai")
    find(page, "input[name=_save]").click()
    # The adapter's own check refuses it, on the field it names; nothing is saved.
    error = wait_until(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#id_cfg_openai_model_error, "
                                                       ".field-cfg_openai_model .errorlist"),
                       "the model field's error")[0]  # type: ignore[index]
    assert "config['model'] is required" in error.text
    assert find(page, "fieldset.tw-adapter-openai").is_displayed()  # the chosen kind stays shown
    assert not Agent.objects.filter(name="chat").exists()

    Select(find(page, "#id_adapter")).select_by_value("http")
    wait_until(page, lambda d: find(d, "fieldset.tw-adapter-http").is_displayed(), "the http fields")
    find(page, "#id_cfg_http_url").send_keys("http://127.0.0.1:9/run")
    find(page, "#id_cfg_http_timeout").send_keys("5")
    find(page, "input[name=_save]").click()
    wait_until(page, lambda d: d.current_url.rstrip("/").endswith("/admin/schedules/agent"), "the agent list")
    assert Agent.objects.get(name="chat").config == {"url": "http://127.0.0.1:9/run", "timeout": 5}


def test_the_agent_page_shows_its_schedules_and_health(login, admin_url, transactional_db) -> None:
    agent = Agent.objects.create(name="scout")
    schedule = Schedule(agent=agent, name="weekdays", cron="0 9 * * 1-5", timezone="America/New_York")
    services.schedule_save(schedule, now=timezone.now())
    for number, state in enumerate((RunState.SUCCEEDED, RunState.SUCCEEDED, RunState.FAILED)):
        Run.objects.create(schedule=schedule, agent=agent, trigger=Trigger.MANUAL, state=state,
                           tick_at=timezone.now(), idempotency_key=f"agent-page-{number}")
    page = login()
    page.get(f"{admin_url}/admin/schedules/agent/{agent.pk}/change/")
    schedules = text_of(page, "#tw-agent-schedules")
    assert "weekdays" in schedules and "At 09:00, Monday through Friday (America/New_York)" in schedules
    assert "Active" in schedules and page.find_elements(By.CSS_SELECTOR, "#tw-agent-schedules .tw-countdown")
    day = find(page, "#tw-health tr[data-window='24 h']")
    assert day.find_element(By.CSS_SELECTOR, ".tw-success").text == "67% · 2/3"
    find(page, "#tw-agent-schedules a").click()
    wait_until(page, lambda d: d.current_url.endswith(f"/admin/schedules/schedule/{schedule.pk}/change/"),
               "the schedule's page")
