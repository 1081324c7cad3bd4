"""Zones: the allow-list, the pinned tz database, and transitions that agree with zoneinfo."""
from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
import tzdata

from core.timing import ALLOWED_TIMEZONES, validate_timezone
from core.timing.zones import zone_rules

UTC = UTC


def test_the_loaded_tz_database_is_the_pinned_tzdata_release() -> None:
    # Timelines in these tests depend on it: bump both together.
    assert tzdata.IANA_VERSION == "2026f"


def test_allow_list_is_zoneinfos_list_without_non_places() -> None:
    assert zoneinfo.available_timezones() >= ALLOWED_TIMEZONES
    assert {"UTC", "Etc/UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"} <= ALLOWED_TIMEZONES
    assert not {"localtime", "Factory", "posixrules"} & ALLOWED_TIMEZONES
    assert len(ALLOWED_TIMEZONES) > 550


def test_validate_timezone_returns_a_zone_named_as_asked() -> None:
    zone = validate_timezone("Europe/Berlin")
    assert str(zone) == "Europe/Berlin"
    assert validate_timezone("Europe/Berlin") is zone
    assert datetime(2026, 7, 1, tzinfo=zone).utcoffset() == timedelta(hours=2)


ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns",
         "Asia/Kolkata", "Pacific/Chatham", "Africa/Casablanca", "America/Mexico_City",
         "Asia/Tehran", "Pacific/Apia", "America/Nuuk", "Asia/Gaza", "Europe/Dublin",
         "Antarctica/Troll", "America/Santiago", "Pacific/Kiritimati", "UTC"]


@pytest.mark.parametrize("name", ZONES)
def test_transitions_match_zoneinfo_hour_by_hour(name: str) -> None:
    rules, zone = zone_rules(name), validate_timezone(name)
    start = int(datetime(2010, 1, 1, tzinfo=UTC).timestamp())
    stop = int(datetime(2040, 1, 1, tzinfo=UTC).timestamp())
    expected, previous = [], _offset(zone, start)
    for at in range(start + 3600, stop, 3600):  # transitions fall on the hour or half hour
        offset = _offset(zone, at)
        if offset != previous:
            expected.append(at)
        previous = offset
    found, cursor = [], start
    while (change := rules.transition_after(cursor)) is not None and change.at < stop:
        assert (change.before, change.after) == (_offset(zone, change.at - 1), _offset(zone, change.at))
        found.append(change.at)
        cursor = change.at
    assert [at - at % 3600 + (3600 if at % 3600 else 0) for at in found] == expected


@pytest.mark.parametrize("name", ZONES)
def test_transition_at_or_before_mirrors_transition_after(name: str) -> None:
    rules = zone_rules(name)
    cursor = int(datetime(2015, 6, 1, tzinfo=UTC).timestamp())
    for _ in range(20):
        change = rules.transition_after(cursor)
        if change is None:
            break
        assert rules.transition_at_or_before(change.at) == change
        assert rules.transition_at_or_before(change.at - 1) != change
        cursor = change.at


def _offset(zone: zoneinfo.ZoneInfo, at: int) -> int:
    offset = datetime.fromtimestamp(at, zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())
