"""Zones: the allow-list, the pinned tz database, and transitions that agree with zoneinfo."""
from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
import tzdata

from core.timing import ALLOWED_TIMEZONES, validate_timezone
from core.timing.legacyzones import refusal, suggestion
from core.timing.zones import REFUSED_TIMEZONES, zone_rules

UTC = UTC


def test_the_loaded_tz_database_is_the_pinned_tzdata_release() -> None:
    # Timelines in these tests depend on it: bump both together.
    assert tzdata.IANA_VERSION == "2026f"


def test_allow_list_is_zoneinfos_regional_names() -> None:
    assert zoneinfo.available_timezones() >= ALLOWED_TIMEZONES
    assert {"UTC", "Etc/UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham",
            "America/Argentina/Buenos_Aires", "Europe/Oslo", "Antarctica/Troll"} <= ALLOWED_TIMEZONES
    assert not {"localtime", "Factory", "posixrules"} & ALLOWED_TIMEZONES
    assert not {"EST", "MST", "HST", "EST5EDT", "CET", "GMT", "Etc/GMT+5", "US/Eastern", "Japan"} & ALLOWED_TIMEZONES
    areas = {"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe",
             "Indian", "Pacific"}
    assert {name for name in ALLOWED_TIMEZONES if name.split("/")[0] not in areas} == {"UTC", "Etc/UTC"}
    assert len(ALLOWED_TIMEZONES) > 480


def test_every_refused_tz_database_name_is_explained_with_a_regional_zone() -> None:
    # A tzdata bump that adds a name nobody mapped fails here, not in a user's face.
    listed = set(resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())
    refused = listed - ALLOWED_TIMEZONES - {"localtime", "Factory", "posixrules"}
    assert refused == REFUSED_TIMEZONES
    assert len(refused) > 100
    for name in refused:
        hint = suggestion(name)
        assert hint in ALLOWED_TIMEZONES, name
        assert f"'{hint}'" in refusal(name), name
        assert "is not a regional zone" not in refusal(name), name


def _pinned(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo.from_file(resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb"),
                                       key=name)


def _offsets(zone: zoneinfo.ZoneInfo) -> list[timedelta | None]:
    start = datetime(1990, 1, 1, tzinfo=UTC)
    return [(start + timedelta(days=7 * week)).astimezone(zone).utcoffset() for week in range(52 * 50)]


# Their suggestion is what people mean by them, not what they are: EST and MST
# are offsets without daylight saving, so their clock differs in summer.
DIFFERENT_ON_PURPOSE = {"EST", "MST"}


def test_a_deprecated_alias_suggests_a_zone_with_the_same_clock() -> None:
    # Since 1990, week by week: the suggestion keeps the alias's wall clock, so
    # switching a schedule over changes nothing but its name.
    for name in sorted(REFUSED_TIMEZONES - DIFFERENT_ON_PURPOSE):
        if (hint := suggestion(name)) != "UTC" and not name.startswith("Etc/GMT"):
            assert _offsets(_pinned(name)) == _offsets(_pinned(hint)), name


def test_est_is_not_new_york_time_which_is_why_it_is_refused() -> None:
    summer = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)
    assert summer.astimezone(_pinned("EST")).hour == 9
    assert summer.astimezone(_pinned("America/New_York")).hour == 10


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
