"""Arbitrary values into every field of Agent and Schedule, through ``full_clean`` and the save service.

Two properties, for any text, number, datetime or JSON in any field:
- the only failure is a ``ValidationError`` (never a ``DataError``,
  ``IntegrityError``, ``TypeError``, ``TimingError``, ``KeyError``, ...);
- nothing unsaveable is accepted: when validation and the save succeed, the
  row is in the database and reads back equal to what was accepted, and a
  value given in its field's own type is what was accepted.

Each example starts from a valid definition and replaces a few fields, so
most examples reach the save. Each runs in a savepoint that is rolled back.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import models, transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schedules.models import AdapterKind, Agent, Schedule
from schedules.services import schedule_save

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --- values ---------------------------------------------------------------------

ANY_CHAR = st.characters(exclude_categories=())  # surrogates included
NASTY = ["", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "é", "🙂", "\u2028", "a" * 101, "a" * 201, "{{", "}}"]
PLAUSIBLE = ["daily", "* * * * *", "*/5 * * * *", "0 9 * * 1-5", "@daily", "0 0 30 2 *", "61 * * * *",
             "UTC", "Europe/Berlin", "America/New_York", "localtime", "Report for {{date}}", "Hi {{user}}",
             "http://127.0.0.1:9/run", "http://[", "http://[x]/", "https://h:99999999/", "ftp://h/",
             "adapters.examples:echo_context", "os:system", "gpt-4o-mini"]
CHOICES = sorted({value for field in Schedule._meta.fields + Agent._meta.fields
                  for value, _ in (field.choices or []) if isinstance(value, str)})
texts = st.one_of(st.text(ANY_CHAR, max_size=40), st.sampled_from(NASTY + PLAUSIBLE + CHOICES))

offsets = st.one_of(
    st.none(), st.just(UTC), st.timezones(),
    st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                      max_value=timedelta(hours=23, minutes=59))))
datetimes = st.one_of(
    st.datetimes(timezones=offsets),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 1, 1), timezones=offsets),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 1, 1), timezones=offsets)
    .map(datetime.isoformat),
    st.dates())
numbers = st.one_of(st.integers(-3, 100), st.integers(-(2**70), 2**70), st.integers(0, 10**6),
                    st.floats(), st.decimals(), st.booleans())
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)), max_leaves=12)
# Configs shaped like what the adapters read, with arbitrary values under their keys.
ADAPTER_KEYS = ["url", "url_env", "token_env", "headers", "timeout", "callable", "model", "base_url",
                "api_key_env", "system", "params", "channel", "sleep", "fail"]
adapter_configs = st.dictionaries(st.sampled_from(ADAPTER_KEYS), st.one_of(json_values, st.sampled_from(PLAUSIBLE)),
                                  max_size=4)
anything = st.one_of(texts, numbers, datetimes, json_values, st.none())


near = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2031, 1, 1),
                   timezones=st.one_of(st.just(UTC), st.timezones()))
slugs = st.from_regex(r"[-a-zA-Z0-9_]{1,30}", fullmatch=True)


def value_for(field: models.Field, *, wild: bool) -> st.SearchStrategy[Any]:
    """A plausible value; when ``wild``, also any value of the field's own type, or anything at all."""
    plausible: st.SearchStrategy[Any]
    own: st.SearchStrategy[Any]
    if isinstance(field, models.JSONField):
        plausible, own = adapter_configs, json_values
    elif isinstance(field, models.DateTimeField):
        plausible, own = near, datetimes
    elif isinstance(field, models.BooleanField):
        plausible, own = st.booleans(), numbers
    elif isinstance(field, models.IntegerField):
        plausible, own = st.integers(0, 120), numbers
    elif isinstance(field, models.SlugField):
        plausible, own = slugs, texts
    else:
        plausible, own = st.one_of(st.text(ANY_CHAR, max_size=40), st.sampled_from(PLAUSIBLE)), texts
    if field.choices:
        plausible = st.sampled_from([value for value, _ in field.choices])
    return st.one_of(plausible, own, own, anything) if wild else plausible


def fed_fields(model: type[models.Model]) -> list[models.Field]:
    """Every field a person or a program defines (the ledger-owned and automatic ones are not inputs)."""
    return [field for field in model._meta.concrete_fields
            if field.editable and not field.primary_key and not isinstance(field, models.ForeignKey)]


AGENT_FIELDS = fed_fields(Agent)
SCHEDULE_FIELDS = fed_fields(Schedule)


def overrides(fields: list[models.Field]) -> st.SearchStrategy[dict[str, Any]]:
    """A few fields replaced: half the examples with plausible values (most reach the save), half wild."""
    return st.tuples(st.sets(st.sampled_from(fields), max_size=3), st.booleans()).flatmap(
        lambda drawn: st.fixed_dictionaries({field.name: value_for(field, wild=drawn[1]) for field in drawn[0]}))


SCHEDULE_BASES = [
    {"kind": "cron", "cron": "*/5 * * * *"},
    {"kind": "interval", "interval_seconds": 3600},
    {"kind": "interval", "interval_seconds": 600, "interval_mode": "after_completion"},
    {"kind": "once", "run_at": NOW + timedelta(days=1)},
]
AGENT_BASES = [
    {"adapter": "echo", "config": {}},
    {"adapter": "http", "config": {"url": "http://127.0.0.1:9/run"}},
    {"adapter": "python", "config": {"callable": "adapters.examples:echo_context"}},
    {"adapter": "openai", "config": {"model": "gpt-4o-mini"}},
    {"adapter": "message", "config": {"channel": "ops"}},
]

# --- the properties --------------------------------------------------------------


class _Discard(Exception):
    """Raised to roll an example's savepoint back."""


def in_savepoint(check) -> None:
    try:
        with transaction.atomic():
            check()
            raise _Discard
    except _Discard:
        pass


def assert_reads_back(instance: models.Model, fed: dict[str, Any]) -> None:
    stored = type(instance)._default_manager.get(pk=instance.pk)
    for field in type(instance)._meta.concrete_fields:
        accepted, read = getattr(instance, field.attname), getattr(stored, field.attname)
        assert read == accepted, f"{field.name}: accepted {accepted!r}, read back {read!r}"
    for name, value in fed.items():
        if _own_type(type(instance)._meta.get_field(name), value):
            assert getattr(instance, name) == value, f"{name}: given {value!r}, accepted {getattr(instance, name)!r}"


def _own_type(field: models.Field, value: Any) -> bool:
    """Whether ``value`` is already what the field holds, so it must be kept as given."""
    if isinstance(field, models.JSONField):
        return isinstance(value, dict)
    if isinstance(field, models.DateTimeField):
        return isinstance(value, datetime)
    if isinstance(field, models.BooleanField):
        return isinstance(value, bool)
    if isinstance(field, models.IntegerField):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


@pytest.mark.django_db
@SETTINGS
@given(base=st.sampled_from(AGENT_BASES), fed=overrides(AGENT_FIELDS))
def test_any_agent_input_is_a_validation_error_or_stored_as_accepted(base, fed):
    def check() -> None:
        agent = Agent(**{"name": "agent", **base, **fed})
        try:
            agent.full_clean()
        except ValidationError as error:
            event(f"agent refused: {', '.join(sorted(error.message_dict))}")
            return
        agent.save()
        event("agent stored")
        assert_reads_back(agent, fed)

    in_savepoint(check)


@pytest.mark.django_db
@SETTINGS
@given(base=st.sampled_from(SCHEDULE_BASES), fed=overrides(SCHEDULE_FIELDS))
def test_any_schedule_input_is_a_validation_error_or_stored_as_accepted(base, fed):
    def check() -> None:
        agent = Agent.objects.create(name="reporter")
        schedule = Schedule(**{"agent": agent, "name": "daily", **base, **fed})
        try:
            schedule_save(schedule, now=NOW)
        except ValidationError as error:
            event(f"schedule refused: {', '.join(sorted(error.message_dict))}")
            return
        event("schedule stored")
        if schedule.session_mode == "persistent" and fed.get("session_id") == "":
            fed.pop("session_id")  # the save gives a persistent session its id
        assert_reads_back(schedule, fed)

    in_savepoint(check)


def test_the_strategies_reach_every_field():
    """A field added later is fed too, or this fails and says which."""
    assert {field.name for field in AGENT_FIELDS} == {"name", "adapter", "config", "is_active", "completion_url"}
    assert {f.name for f in SCHEDULE_FIELDS} >= {"kind", "cron", "run_at", "input_template", "max_attempts",
                                                "jitter_seconds", "session_id", "paused", "paused_reason"}
    assert set(AdapterKind.values) == {base["adapter"] for base in AGENT_BASES}
