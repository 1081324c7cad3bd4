"""Model validation answers every bad value with a ValidationError on its field, before the database is asked.

Each case goes through ``full_clean`` (what the admin, the API and a shell
all call) and through ``schedule_save``, and nothing is written.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from schedules.models import Agent, Schedule
from schedules.services import schedule_save

T0 = datetime(2026, 11, 22, 9, 0, 30, tzinfo=UTC)


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="reporter", adapter="echo")


def errors_of(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.full_clean()
    return caught.value.message_dict


def refused_by_save(schedule: Schedule) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        schedule_save(schedule, now=T0)
    assert not Schedule.objects.exists()
    return caught.value.message_dict


# Item 13: the adapter's config check is model validation.

@pytest.mark.parametrize(("adapter", "config", "says"), [
    ("http", {"url": "ftp://example.com/run"}, "http:// or https://"),
    ("http", {}, "config['url'] is required"),
    ("python", {"callable": "os:system"}, "not in TICKWISE_PYTHON_CALLABLES"),
    ("openai", {}, "config['model'] is required"),
    ("message", {"channel": ""}, "config['channel']"),
    ("http", {"url": "http://["}, "Invalid IPv6 URL"),
    ("openai", {"model": "m", "base_url": "http://[x]/v1"}, "does not appear to be an IPv4 or IPv6 address"),
])
def test_agent_full_clean_runs_the_adapters_config_check(db, adapter, config, says):
    errors = errors_of(Agent(name="bad", adapter=adapter, config=config))
    assert list(errors) == ["config"] and says in errors["config"][0]


def test_agent_with_a_valid_config_passes(db):
    Agent(name="hook", adapter="http", config={"url": "http://127.0.0.1:9/run", "timeout": 5}).full_clean()
    Agent(name="fn", adapter="python", config={"callable": "adapters.examples:echo_context"}).full_clean()


def test_unknown_adapter_kind_is_an_adapter_error(db):
    errors = errors_of(Agent(name="x", adapter="carrier-pigeon", config={}))
    assert list(errors) == ["adapter"]


def test_config_that_is_not_an_object_is_a_config_error(db):
    assert "JSON object" in errors_of(Agent(name="x", config=["url"]))["config"][0]


# Item 14: text and JSON the database cannot store.

@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b", "\udfff"])
@pytest.mark.parametrize("field", ["input_template", "cron", "timezone", "session_id", "paused_reason"])
def test_unstorable_text_in_a_schedule_is_a_field_error(agent, field, text):
    schedule = Schedule(agent=agent, name="x", cron="* * * * *")
    setattr(schedule, field, text)
    errors = refused_by_save(schedule)
    assert field in errors
    assert field in errors[field][0] and ("NUL" in errors[field][0] or "surrogate" in errors[field][0])


@pytest.mark.parametrize("name", ["bad\x00name", "bad\ud800name"])
def test_unstorable_names_are_field_errors(agent, name):
    assert "name" in errors_of(Agent(name=name))
    assert "name" in refused_by_save(Schedule(agent=agent, name=name, cron="* * * * *"))


@pytest.mark.parametrize(("config", "path"), [
    ({"system": "\x00"}, "config['system']"),
    ({"params": {"stop": ["ok", "\ud83d"]}}, "config['params']['stop'][1]"),
    ({"headers": {"X-\x00": "v"}}, "config['headers'] has a key"),
])
def test_unstorable_strings_anywhere_in_a_json_config_name_their_path(db, config, path):
    errors = errors_of(Agent(name="chat", adapter="echo", config=config))
    assert path in errors["config"][0]
    assert not Agent.objects.exists()


@pytest.mark.parametrize(("value", "says"), [
    (float("nan"), "nan"), (float("inf"), "inf"), (1e23, "write it as an integer"),
    (2**70, "outside ±2**63"), ({1: "a"}, "not a string"), ((1, 2), "tuple"),
])
def test_json_numbers_and_types_that_would_not_read_back_are_refused(db, value, says):
    assert says in errors_of(Agent(name="x", config={"v": value}))["config"][0]


def test_json_nested_deeper_than_the_bound_is_refused_not_a_recursion_error(db):
    deep: dict = {}
    for _ in range(5000):
        deep = {"d": deep}
    assert "nested more than" in errors_of(Agent(name="x", config=deep))["config"][0]


def test_json_that_contains_itself_is_refused(db):
    loop: dict = {}
    loop["self"] = loop
    assert "contains itself" in errors_of(Agent(name="x", config=loop))["config"][0]


def test_shared_json_values_are_not_mistaken_for_a_loop(db):
    shared = {"k": 1}
    agent = Agent(name="x", config={"a": shared, "b": shared})
    agent.full_clean()
    agent.save()
    assert Agent.objects.get(pk=agent.pk).config == {"a": {"k": 1}, "b": {"k": 1}}


def test_none_in_a_blank_text_field_is_refused_not_an_integrity_error(agent):
    assert "input_template" in refused_by_save(Schedule(agent=agent, name="x", cron="* * * * *",
                                                        input_template=None))


# Item 15: every bad value is a ValidationError on its field.

def test_unknown_kind_is_a_kind_error_not_a_key_error(agent):
    assert list(errors_of(Schedule(agent=agent, name="x", kind="weekly"))) == ["kind"]
    with pytest.raises(ValidationError) as caught:
        Schedule(agent=agent, name="x", kind="weekly").clean()  # clean() alone, as a form might call it
    assert "kind" in caught.value.message_dict


@pytest.mark.parametrize("field", ["run_at", "start_at", "end_at"])
def test_naive_instants_are_field_errors_not_timing_errors(agent, field):
    schedule = Schedule(agent=agent, name="x", kind="once", run_at=T0)
    setattr(schedule, field, datetime(2026, 12, 1, 9, 0))
    errors = errors_of(schedule)
    assert field in errors and "naive" in errors[field][0]


@pytest.mark.parametrize(("field", "value"), [
    ("interval_seconds", "every minute"), ("interval_seconds", 1.5), ("interval_seconds", float("inf")),
    ("max_runs", [3]), ("run_at", "tomorrow"), ("run_at", 12), ("paused", "maybe"), ("jitter_seconds", None),
])
def test_values_of_the_wrong_type_are_field_errors(agent, field, value):
    schedule = Schedule(agent=agent, name="x", kind="interval", interval_seconds=60)
    setattr(schedule, field, value)
    assert field in errors_of(schedule)


def test_one_bad_field_does_not_hide_the_others(agent):
    schedule = Schedule(agent=agent, name="x", kind="interval", interval_seconds="soon",
                        retry_backoff_seconds=20, retry_backoff_max_seconds=10, timezone="Mars/Base")
    assert set(errors_of(schedule)) == {"interval_seconds", "retry_backoff_max_seconds", "timezone"}


# Item 16: bounds a production scheduler sets.

@pytest.mark.parametrize(("field", "limit"), [
    ("interval_seconds", 366 * 86400), ("timeout_seconds", 86400), ("max_attempts", 100),
    ("retry_backoff_seconds", 86400), ("retry_backoff_max_seconds", 86400), ("jitter_seconds", 86400),
    ("missed_grace_seconds", 7 * 86400), ("replay_cap", 10_000), ("max_concurrent", 1000),
    ("failure_limit", 1000),
])
def test_sizes_past_their_bound_are_refused_and_the_bound_itself_is_accepted(agent, field, limit):
    schedule = Schedule(agent=agent, name="x", kind="interval", interval_seconds=366 * 86400,
                        retry_backoff_max_seconds=86400)
    setattr(schedule, field, limit + 1)
    errors = errors_of(schedule)
    assert field in errors and f"at most {limit}" in errors[field][0]
    setattr(schedule, field, limit)
    schedule.full_clean()


@pytest.mark.parametrize(("field", "value"), [("interval_seconds", 2**31 - 1), ("max_attempts", 10**9),
                                               ("retry_backoff_max_seconds", 2**31 - 1)])
def test_the_sizes_named_in_the_issue_are_refused(agent, field, value):
    schedule = Schedule(agent=agent, name="x", kind="interval", interval_seconds=60)
    setattr(schedule, field, value)
    assert field in refused_by_save(schedule)


@pytest.mark.parametrize("field", ["run_at", "start_at", "end_at"])
def test_instants_outside_the_supported_range_are_refused(agent, field):
    schedule = Schedule(agent=agent, name="x", kind="once", run_at=T0 + timedelta(days=1))
    setattr(schedule, field, datetime(2200, 1, 1, tzinfo=UTC))
    assert "2200-01-01" in errors_of(schedule)[field][0]
    setattr(schedule, field, datetime(1969, 12, 31, 23, 59, tzinfo=UTC))
    assert field in errors_of(schedule)


@pytest.mark.parametrize("config", ['{"system": "\\u0000"}', '{"\\u0000": 1}', '{"a": ["\\ud800"]}', '{"t": NaN}'])
def test_a_form_over_the_model_shows_unstorable_json_as_a_field_error(db, config):
    """What the admin's agent page does with a pasted config: a form error, not a 500."""
    from django.forms import modelform_factory

    form = modelform_factory(Agent, fields=["name", "adapter", "config", "is_active"])(
        data={"name": "chat", "adapter": "echo", "config": config, "is_active": "on"})
    assert not form.is_valid()
    assert list(form.errors) == ["config"]
    assert not Agent.objects.exists()
