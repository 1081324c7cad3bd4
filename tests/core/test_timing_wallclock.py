"""Typed wall-clock times read in a schedule's zone, one zone's DST timeline at a time."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.timing import TimingError
from core.timing.wallclock import resolve_wall_clock

NY = "America/New_York"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def read(wall: str, zone: str = NY, *, gap: str = "skip", fold: str = "first") -> datetime:
    return resolve_wall_clock(datetime.fromisoformat(wall), zone, gap=gap, fold=fold)


def refused(wall: datetime | str, zone: str = NY, *, gap: str = "skip", fold: str = "first") -> str:
    value = datetime.fromisoformat(wall) if isinstance(wall, str) else wall
    with pytest.raises(TimingError) as raised:
        resolve_wall_clock(value, zone, gap=gap, fold=fold, name="run_at")
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_the_issue_example_is_nine_in_new_york() -> None:
    assert read("2026-12-02 09:00") == utc("2026-12-02 14:00")
    assert read("2026-07-02 09:00") == utc("2026-07-02 13:00")


def test_the_result_is_aware_utc_and_keeps_seconds_and_microseconds() -> None:
    at = read("2026-12-02 09:00:07.250000")
    assert at.tzinfo is UTC and at == utc("2026-12-02 14:00:07.25")


def test_utc_and_fixed_offset_zones_are_plain() -> None:
    assert read("2026-03-08 02:30", "UTC") == utc("2026-03-08 02:30")
    assert read("2026-03-08 02:30", "Asia/Kolkata") == utc("2026-03-07 21:00")


# --- America/New_York, spring forward: 2026-03-08 02:00 EST (07:00Z) -> 03:00 EDT

def test_a_time_in_the_gap_is_refused_under_skip_naming_the_gap() -> None:
    assert refused("2026-03-08 02:30") == (
        "run_at: 2026-03-08 02:30 does not exist in America/New_York (the clocks jump from "
        "2026-03-08 02:00 to 2026-03-08 03:00); pick another time, or set dst_gap to shift "
        "to run at 2026-03-08 03:00")
    assert "does not exist" in refused("2026-03-08 02:00")


def test_a_time_in_the_gap_shifts_to_the_transition_under_shift() -> None:
    for wall in ("2026-03-08 02:00", "2026-03-08 02:30", "2026-03-08 02:59:59"):
        assert read(wall, gap="shift") == utc("2026-03-08 07:00")


def test_the_edges_of_the_gap_exist() -> None:
    assert read("2026-03-08 01:59:59") == utc("2026-03-08 06:59:59")
    assert read("2026-03-08 03:00") == utc("2026-03-08 07:00")


# --- America/New_York, fall back: 2026-11-01 02:00 EDT (06:00Z) -> 01:00 EST

def test_a_time_in_the_fold_follows_dst_fold() -> None:
    assert read("2026-11-01 01:30", fold="first") == utc("2026-11-01 05:30")
    assert read("2026-11-01 01:30", fold="last") == utc("2026-11-01 06:30")


def test_both_reads_a_single_time_as_its_first_occurrence() -> None:
    assert read("2026-11-01 01:30", fold="both") == utc("2026-11-01 05:30")


def test_the_edges_of_the_fold() -> None:
    assert read("2026-11-01 00:59", fold="last") == utc("2026-11-01 04:59")
    assert read("2026-11-01 01:00", fold="last") == utc("2026-11-01 06:00")
    assert read("2026-11-01 02:00", fold="first") == utc("2026-11-01 07:00")


# --- Other shapes: a 30-minute change, a whole missing day

def test_lord_howe_half_hour_fold_and_gap() -> None:
    # 2026-04-05 02:00 (+11) -> 01:30 (+10:30); 2026-10-04 02:00 (+10:30) -> 02:30 (+11).
    zone = "Australia/Lord_Howe"
    assert read("2026-04-05 01:45", zone, fold="first") == utc("2026-04-04 14:45")
    assert read("2026-04-05 01:45", zone, fold="last") == utc("2026-04-04 15:15")
    assert read("2026-10-04 02:15", zone, gap="shift") == utc("2026-10-03 15:30")
    assert "(the clocks jump from 2026-10-04 02:00 to 2026-10-04 02:30)" in refused("2026-10-04 02:15", zone)


def test_samoa_skipped_a_whole_day() -> None:
    # Pacific/Apia went from 2011-12-29 24:00 (-10:00) straight to 2011-12-31 00:00 (+14:00).
    assert read("2011-12-30 09:00", "Pacific/Apia", gap="shift") == utc("2011-12-30 10:00")
    assert "from 2011-12-30 00:00 to 2011-12-31 00:00" in refused("2011-12-30 09:00", "Pacific/Apia")


# --- Bad input: one line, naming what is wrong

def test_an_aware_value_is_refused() -> None:
    assert refused(utc("2026-12-02 09:00")) == (
        "run_at must be a wall-clock time without an offset, got 2026-12-02T09:00:00+00:00")


EXTREMES = [datetime.min, datetime.max, datetime(1, 1, 1, 12), datetime(9999, 1, 1), datetime(9997, 12, 31)]


@pytest.mark.parametrize("wall", EXTREMES)
def test_extreme_dates_are_refused_not_overflowed(wall: datetime) -> None:
    assert "is outside the supported range (0002-01-02 to 9997-12-30)" in refused(wall, "Pacific/Kiritimati")
    assert "is outside the supported range (0002-01-02 to 9997-12-30)" in refused(wall, "America/Adak")


def test_the_supported_range_reads_in_every_offset() -> None:
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", NY):
        assert read("0002-01-02 00:00", zone).year in (1, 2)
        assert read("9997-12-30 23:59:59.999999", zone).year in (9997, 9998)


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"zone": "Mars/Base"}, "timezone: unknown zone 'Mars/Base'"),
    ({"zone": "localtime"}, "timezone: unknown zone 'localtime'"),
    ({"gap": "later"}, "dst_gap: 'later' is not one of skip, shift"),
    ({"fold": "twice"}, "dst_fold: 'twice' is not one of first, last, both"),
])
def test_unknown_zone_and_policies_are_refused(kwargs: dict[str, str], says: str) -> None:
    args = {"zone": NY, "gap": "skip", "fold": "first", **kwargs}
    assert says in refused("2026-12-02 09:00", args["zone"], gap=args["gap"], fold=args["fold"])


def test_a_non_datetime_is_refused() -> None:
    with pytest.raises(TimingError, match="run_at must be a datetime, not str"):
        resolve_wall_clock("2026-12-02 09:00", NY, gap="skip", fold="first", name="run_at")  # type: ignore[arg-type]
