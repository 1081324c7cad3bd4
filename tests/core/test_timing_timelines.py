"""The fire-time contract, one zone at a time, read as timelines.

Each line is ``<tick_at UTC>  <local wall time>  [note]``; a ``dst_gap_skipped``
line is recorded in the ledger but does not run. Offsets come from the pinned
tzdata package.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from core.timing import CronSpec, Plan, ticks_between


def timeline(expr: str, tz: str, after: str, until: str, **policies: str) -> list[str]:
    plan = Plan(CronSpec(expr, tz, **policies))
    ticks = ticks_between(plan, after=_utc(after), until=_utc(until), limit=10_000)
    return [_line(tick.at, tick.local, tick.note) for tick in ticks]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _line(at: datetime, local: datetime, note: str | None) -> str:
    line = f"{at:%Y-%m-%dT%H:%M}Z  {local.isoformat(timespec='minutes')}"
    return f"{line}  {note}" if note else line


# --- America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST

NY = "America/New_York"


def test_new_york_daily_0230_does_not_run_on_the_spring_forward_day() -> None:
    assert timeline("30 2 * * *", NY, "2026-03-07T00:00Z", "2026-03-10T00:00Z") == [
        "2026-03-07T07:30Z  2026-03-07T02:30-05:00",
        "2026-03-08T07:30Z  2026-03-08T02:30-05:00  dst_gap_skipped",
        "2026-03-09T06:30Z  2026-03-09T02:30-04:00",
    ]


def test_new_york_daily_0230_with_shift_runs_at_0300_on_the_spring_forward_day() -> None:
    assert timeline("30 2 * * *", NY, "2026-03-07T00:00Z", "2026-03-10T00:00Z", dst_gap="shift") == [
        "2026-03-07T07:30Z  2026-03-07T02:30-05:00",
        "2026-03-08T07:00Z  2026-03-08T03:00-04:00  dst_gap_shifted",
        "2026-03-09T06:30Z  2026-03-09T02:30-04:00",
    ]


def test_new_york_every_gap_minute_is_recorded_once_when_skipped() -> None:
    assert timeline("15,45 2 * * *", NY, "2026-03-08T00:00Z", "2026-03-09T00:00Z") == [
        "2026-03-08T07:15Z  2026-03-08T02:15-05:00  dst_gap_skipped",
        "2026-03-08T07:45Z  2026-03-08T02:45-05:00  dst_gap_skipped",
    ]


def test_new_york_gap_ticks_shifting_onto_one_instant_run_once() -> None:
    assert timeline("15,45 2 * * *", NY, "2026-03-08T00:00Z", "2026-03-09T00:00Z", dst_gap="shift") == [
        "2026-03-08T07:00Z  2026-03-08T03:00-04:00  dst_gap_shifted",
    ]


def test_new_york_half_hourly_keeps_real_time_cadence_through_the_gap() -> None:
    # 02:00 and 02:30 do not exist; read with EST they are 03:00 and 03:30 EDT,
    # which fire anyway: no extra ticks, no noise.
    expected = [
        "2026-03-08T06:30Z  2026-03-08T01:30-05:00",
        "2026-03-08T07:00Z  2026-03-08T03:00-04:00",
        "2026-03-08T07:30Z  2026-03-08T03:30-04:00",
    ]
    assert timeline("*/30 * * * *", NY, "2026-03-08T06:15Z", "2026-03-08T07:45Z") == expected
    assert timeline("*/30 * * * *", NY, "2026-03-08T06:15Z", "2026-03-08T07:45Z",
                    dst_gap="shift") == expected


def test_new_york_daily_0130_runs_once_on_the_fall_back_day_at_the_first_pass() -> None:
    assert timeline("30 1 * * *", NY, "2026-10-31T00:00Z", "2026-11-03T00:00Z") == [
        "2026-10-31T05:30Z  2026-10-31T01:30-04:00",
        "2026-11-01T05:30Z  2026-11-01T01:30-04:00  dst_fold_first",
        "2026-11-02T06:30Z  2026-11-02T01:30-05:00",
    ]


def test_new_york_daily_0130_fold_last_and_both() -> None:
    window = ("2026-11-01T00:00Z", "2026-11-02T00:00Z")
    assert timeline("30 1 * * *", NY, *window, dst_fold="last") == [
        "2026-11-01T06:30Z  2026-11-01T01:30-05:00  dst_fold_second",
    ]
    assert timeline("30 1 * * *", NY, *window, dst_fold="both") == [
        "2026-11-01T05:30Z  2026-11-01T01:30-04:00  dst_fold_first",
        "2026-11-01T06:30Z  2026-11-01T01:30-05:00  dst_fold_second",
    ]


def test_new_york_half_hourly_fires_in_both_passes_of_the_fold_whatever_dst_fold_says() -> None:
    expected = [
        "2026-11-01T05:00Z  2026-11-01T01:00-04:00  dst_fold_first",
        "2026-11-01T05:30Z  2026-11-01T01:30-04:00  dst_fold_first",
        "2026-11-01T06:00Z  2026-11-01T01:00-05:00  dst_fold_second",
        "2026-11-01T06:30Z  2026-11-01T01:30-05:00  dst_fold_second",
        "2026-11-01T07:00Z  2026-11-01T02:00-05:00",
    ]
    for fold in ("first", "last", "both"):
        assert timeline("*/30 * * * *", NY, "2026-11-01T04:45Z", "2026-11-01T07:00Z",
                        dst_fold=fold) == expected


def test_new_york_hour_list_is_not_a_wildcard_so_the_fold_rule_applies() -> None:
    assert timeline("0 0-22 * * *", NY, "2026-11-01T04:30Z", "2026-11-01T07:30Z") == [
        "2026-11-01T05:00Z  2026-11-01T01:00-04:00  dst_fold_first",
        "2026-11-01T07:00Z  2026-11-01T02:00-05:00",
    ]


# --- Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET

BERLIN = "Europe/Berlin"


def test_berlin_daily_0230_spring_forward_skip_and_shift() -> None:
    window = ("2026-03-28T00:00Z", "2026-03-31T00:00Z")
    assert timeline("30 2 * * *", BERLIN, *window) == [
        "2026-03-28T01:30Z  2026-03-28T02:30+01:00",
        "2026-03-29T01:30Z  2026-03-29T02:30+01:00  dst_gap_skipped",
        "2026-03-30T00:30Z  2026-03-30T02:30+02:00",
    ]
    assert timeline("30 2 * * *", BERLIN, *window, dst_gap="shift")[1] == (
        "2026-03-29T01:00Z  2026-03-29T03:00+02:00  dst_gap_shifted")


def test_berlin_daily_0230_fall_back_first_last_both() -> None:
    window = ("2026-10-24T00:00Z", "2026-10-27T00:00Z")
    assert timeline("30 2 * * *", BERLIN, *window) == [
        "2026-10-24T00:30Z  2026-10-24T02:30+02:00",
        "2026-10-25T00:30Z  2026-10-25T02:30+02:00  dst_fold_first",
        "2026-10-26T01:30Z  2026-10-26T02:30+01:00",
    ]
    assert timeline("30 2 * * *", BERLIN, *window, dst_fold="last")[1] == (
        "2026-10-25T01:30Z  2026-10-25T02:30+01:00  dst_fold_second")
    assert timeline("30 2 * * *", BERLIN, *window, dst_fold="both")[1:3] == [
        "2026-10-25T00:30Z  2026-10-25T02:30+02:00  dst_fold_first",
        "2026-10-25T01:30Z  2026-10-25T02:30+01:00  dst_fold_second",
    ]


def test_berlin_quarter_hourly_through_the_fold() -> None:
    assert timeline("*/15 * * * *", BERLIN, "2026-10-25T00:40Z", "2026-10-25T01:20Z") == [
        "2026-10-25T00:45Z  2026-10-25T02:45+02:00  dst_fold_first",
        "2026-10-25T01:00Z  2026-10-25T02:00+01:00  dst_fold_second",
        "2026-10-25T01:15Z  2026-10-25T02:15+01:00  dst_fold_second",
    ]


def test_berlin_weekday_mornings_keep_their_wall_time_across_the_change() -> None:
    assert timeline("0 9 * * MON-FRI", BERLIN, "2026-03-27T00:00Z", "2026-03-31T00:00Z") == [
        "2026-03-27T08:00Z  2026-03-27T09:00+01:00",
        "2026-03-30T07:00Z  2026-03-30T09:00+02:00",
    ]


def test_berlin_last_sunday_is_the_change_day_so_its_0230_is_in_the_gap_and_the_fold() -> None:
    # Europe changes its clocks on the last Sunday of March and October: "SUNL"
    # picks exactly those days, and the DST rules apply as to any other tick.
    assert timeline("30 2 * 3,10 SUNL", BERLIN, "2026-01-01T00:00Z", "2027-01-01T00:00Z") == [
        "2026-03-29T01:30Z  2026-03-29T02:30+01:00  dst_gap_skipped",
        "2026-10-25T00:30Z  2026-10-25T02:30+02:00  dst_fold_first",
    ]
    assert timeline("30 2 * 3,10 SUNL", BERLIN, "2026-01-01T00:00Z", "2027-01-01T00:00Z",
                    dst_gap="shift", dst_fold="both") == [
        "2026-03-29T01:00Z  2026-03-29T03:00+02:00  dst_gap_shifted",
        "2026-10-25T00:30Z  2026-10-25T02:30+02:00  dst_fold_first",
        "2026-10-25T01:30Z  2026-10-25T02:30+01:00  dst_fold_second",
    ]


# --- Australia/Lord_Howe: a 30-minute DST shift. 2026-04-05 02:00 -> 01:30 (+11 -> +10:30);
#     2026-10-04 02:00 -> 02:30 (+10:30 -> +11)

LORD_HOWE = "Australia/Lord_Howe"


def test_lord_howe_half_hour_gap_skip_and_shift() -> None:
    window = ("2026-10-02T00:00Z", "2026-10-05T00:00Z")
    assert timeline("15 2 * * *", LORD_HOWE, *window) == [
        "2026-10-02T15:45Z  2026-10-03T02:15+10:30",
        "2026-10-03T15:45Z  2026-10-04T02:15+10:30  dst_gap_skipped",
        "2026-10-04T15:15Z  2026-10-05T02:15+11:00",
    ]
    assert timeline("15 2 * * *", LORD_HOWE, *window, dst_gap="shift")[1] == (
        "2026-10-03T15:30Z  2026-10-04T02:30+11:00  dst_gap_shifted")


def test_lord_howe_quarter_hourly_through_the_half_hour_gap() -> None:
    assert timeline("*/15 * * * *", LORD_HOWE, "2026-10-03T15:10Z", "2026-10-03T15:50Z") == [
        "2026-10-03T15:15Z  2026-10-04T01:45+10:30",
        "2026-10-03T15:30Z  2026-10-04T02:30+11:00",
        "2026-10-03T15:45Z  2026-10-04T02:45+11:00",
    ]


def test_lord_howe_half_hour_fold() -> None:
    window = ("2026-04-04T12:00Z", "2026-04-04T18:00Z")
    assert timeline("45 1 * * *", LORD_HOWE, *window) == [
        "2026-04-04T14:45Z  2026-04-05T01:45+11:00  dst_fold_first",
    ]
    assert timeline("45 1 * * *", LORD_HOWE, *window, dst_fold="last") == [
        "2026-04-04T15:15Z  2026-04-05T01:45+10:30  dst_fold_second",
    ]
    assert timeline("*/20 * * * *", LORD_HOWE, "2026-04-04T14:10Z", "2026-04-04T15:35Z") == [
        "2026-04-04T14:20Z  2026-04-05T01:20+11:00",
        "2026-04-04T14:40Z  2026-04-05T01:40+11:00  dst_fold_first",
        "2026-04-04T15:10Z  2026-04-05T01:40+10:30  dst_fold_second",
        "2026-04-04T15:30Z  2026-04-05T02:00+10:30",
    ]


# --- America/St_Johns: half-hour offsets. 2026-03-08 02:00 NST -> 03:00 NDT (-03:30 -> -02:30);
#     2026-11-01 02:00 NDT -> 01:00 NST

ST_JOHNS = "America/St_Johns"


def test_st_johns_spring_forward() -> None:
    assert timeline("30 2 * * *", ST_JOHNS, "2026-03-07T00:00Z", "2026-03-10T00:00Z") == [
        "2026-03-07T06:00Z  2026-03-07T02:30-03:30",
        "2026-03-08T06:00Z  2026-03-08T02:30-03:30  dst_gap_skipped",
        "2026-03-09T05:00Z  2026-03-09T02:30-02:30",
    ]


def test_st_johns_fall_back() -> None:
    assert timeline("30 1 * * *", ST_JOHNS, "2026-11-01T00:00Z", "2026-11-02T00:00Z",
                    dst_fold="both") == [
        "2026-11-01T04:00Z  2026-11-01T01:30-02:30  dst_fold_first",
        "2026-11-01T05:00Z  2026-11-01T01:30-03:30  dst_fold_second",
    ]


# --- Asia/Kolkata: +05:30 all year, no DST

KOLKATA = "Asia/Kolkata"


def test_kolkata_weekday_mornings() -> None:
    assert timeline("0 9 * * MON-FRI", KOLKATA, "2026-03-06T00:00Z", "2026-03-10T04:00Z") == [
        "2026-03-06T03:30Z  2026-03-06T09:00+05:30",
        "2026-03-09T03:30Z  2026-03-09T09:00+05:30",
        "2026-03-10T03:30Z  2026-03-10T09:00+05:30",
    ]


def test_kolkata_has_no_dst_notes_all_year_whatever_the_policies() -> None:
    for gap, fold in (("skip", "first"), ("shift", "both")):
        plan = Plan(CronSpec("0 * * * *", KOLKATA, gap, fold))
        ticks = ticks_between(plan, after=_utc("2026-01-01T00:00Z"), until=_utc("2027-01-01T00:00Z"),
                              limit=10_000)
        assert len(ticks) == 8760
        assert {tick.note for tick in ticks} == {None}
        assert {tick.local.utcoffset() for tick in ticks} == {timedelta(hours=5, minutes=30)}


# --- Pacific/Chatham: +12:45 / +13:45. 2026-04-05 03:45 -> 02:45; 2026-09-27 02:45 -> 03:45

CHATHAM = "Pacific/Chatham"


def test_chatham_gap_skip_and_shift() -> None:
    window = ("2026-09-25T00:00Z", "2026-09-28T00:00Z")
    assert timeline("0 3 * * *", CHATHAM, *window) == [
        "2026-09-25T14:15Z  2026-09-26T03:00+12:45",
        "2026-09-26T14:15Z  2026-09-27T03:00+12:45  dst_gap_skipped",
        "2026-09-27T13:15Z  2026-09-28T03:00+13:45",
    ]
    assert timeline("0 3 * * *", CHATHAM, *window, dst_gap="shift")[1] == (
        "2026-09-26T14:00Z  2026-09-27T03:45+13:45  dst_gap_shifted")


def test_chatham_hourly_keeps_one_tick_per_real_hour_through_the_fold() -> None:
    assert timeline("0 * * * *", CHATHAM, "2026-04-04T12:00Z", "2026-04-04T15:30Z") == [
        "2026-04-04T12:15Z  2026-04-05T02:00+13:45",
        "2026-04-04T13:15Z  2026-04-05T03:00+13:45  dst_fold_first",
        "2026-04-04T14:15Z  2026-04-05T03:00+12:45  dst_fold_second",
        "2026-04-04T15:15Z  2026-04-05T04:00+12:45",
    ]


def test_chatham_daily_0300_in_the_fold_runs_once() -> None:
    window = ("2026-04-04T00:00Z", "2026-04-05T00:00Z")
    assert timeline("0 3 * * *", CHATHAM, *window) == [
        "2026-04-04T13:15Z  2026-04-05T03:00+13:45  dst_fold_first",
    ]
    assert timeline("0 3 * * *", CHATHAM, *window, dst_fold="last") == [
        "2026-04-04T14:15Z  2026-04-05T03:00+12:45  dst_fold_second",
    ]


# --- Africa/Casablanca: DST is suspended for Ramadan. Pinned tzdata 2026f:
#     2026-02-15 03:00 -> 02:00 (+01 -> +00), 2026-03-22 02:00 -> 03:00 (+00 -> +01),
#     and from 2026-09-20 (02:00 -> 01:00) +00 all year.

CASABLANCA = "Africa/Casablanca"


def test_casablanca_ramadan_fall_back() -> None:
    assert timeline("30 2 * * *", CASABLANCA, "2026-02-14T00:00Z", "2026-02-17T00:00Z") == [
        "2026-02-14T01:30Z  2026-02-14T02:30+01:00",
        "2026-02-15T01:30Z  2026-02-15T02:30+01:00  dst_fold_first",
        "2026-02-16T02:30Z  2026-02-16T02:30+00:00",
    ]


def test_casablanca_end_of_ramadan_spring_forward() -> None:
    assert timeline("30 2 * * *", CASABLANCA, "2026-03-21T00:00Z", "2026-03-24T00:00Z") == [
        "2026-03-21T02:30Z  2026-03-21T02:30+00:00",
        "2026-03-22T02:30Z  2026-03-22T02:30+00:00  dst_gap_skipped",
        "2026-03-23T01:30Z  2026-03-23T02:30+01:00",
    ]


def test_casablanca_returns_to_plus_zero_all_year_in_the_pinned_rules() -> None:
    assert timeline("30 1 * * *", CASABLANCA, "2026-09-19T00:00Z", "2026-09-22T00:00Z") == [
        "2026-09-19T00:30Z  2026-09-19T01:30+01:00",
        "2026-09-20T00:30Z  2026-09-20T01:30+01:00  dst_fold_first",
        "2026-09-21T01:30Z  2026-09-21T01:30+00:00",
    ]
    plan = Plan(CronSpec("30 2 * * *", CASABLANCA))
    ticks = ticks_between(plan, after=_utc("2027-01-01T00:00Z"), until=_utc("2028-01-01T00:00Z"))
    assert len(ticks) == 365
    assert {(tick.at.hour, tick.at.minute, tick.note) for tick in ticks} == {(2, 30, None)}


# --- America/Mexico_City: abolished DST in October 2022 (rules changed recently)

MEXICO_CITY = "America/Mexico_City"


def test_mexico_city_last_fall_back_in_2022() -> None:
    assert timeline("30 1 * * *", MEXICO_CITY, "2022-10-29T00:00Z", "2022-11-01T00:00Z") == [
        "2022-10-29T06:30Z  2022-10-29T01:30-05:00",
        "2022-10-30T06:30Z  2022-10-30T01:30-05:00  dst_fold_first",
        "2022-10-31T07:30Z  2022-10-31T01:30-06:00",
    ]


def test_mexico_city_no_longer_springs_forward() -> None:
    # The first Sunday of April 2023 was a DST start under the old rules.
    assert timeline("30 2 * * *", MEXICO_CITY, "2023-04-01T00:00Z", "2023-04-04T00:00Z") == [
        "2023-04-01T08:30Z  2023-04-01T02:30-06:00",
        "2023-04-02T08:30Z  2023-04-02T02:30-06:00",
        "2023-04-03T08:30Z  2023-04-03T02:30-06:00",
    ]


def test_tehran_abolished_dst_in_2022_too() -> None:
    assert timeline("0 0 * * *", "Asia/Tehran", "2023-03-20T00:00Z", "2023-03-23T00:00Z") == [
        "2023-03-20T20:30Z  2023-03-21T00:00+03:30",
        "2023-03-21T20:30Z  2023-03-22T00:00+03:30",
        "2023-03-22T20:30Z  2023-03-23T00:00+03:30",
    ]


# --- A gap can be a whole day: Pacific/Apia skipped 2011-12-30 (-10:00 -> +14:00)


def test_apia_skipped_a_whole_day() -> None:
    # Read with -10:00, the missing 30 December 09:00 is the instant of
    # 31 December 09:00 +14:00, which fires anyway: one tick per instant.
    window = ("2011-12-29T00:00Z", "2011-12-31T12:00Z")
    assert timeline("0 9 * * *", "Pacific/Apia", *window) == [
        "2011-12-29T19:00Z  2011-12-29T09:00-10:00",
        "2011-12-30T19:00Z  2011-12-31T09:00+14:00",
    ]
    assert timeline("0 9 * * *", "Pacific/Apia", *window, dst_gap="shift") == [
        "2011-12-29T19:00Z  2011-12-29T09:00-10:00",
        "2011-12-30T10:00Z  2011-12-31T00:00+14:00  dst_gap_shifted",
        "2011-12-30T19:00Z  2011-12-31T09:00+14:00",
    ]
