"""Plans: the window (start, end, max runs), intervals, one-shots and deterministic jitter."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from zoneinfo import ZoneInfo

from core.timing import CronSpec, IntervalSpec, OnceSpec, Plan, Tick, next_tick, ticks_between

UTC = UTC
T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOURLY = CronSpec("0 * * * *")


def first(plan: Plan, *, after: datetime, last_finished_at: datetime | None = None) -> Tick:
    """next_tick, for a query that must find one."""
    tick = next_tick(plan, after=after, last_finished_at=last_finished_at)
    assert tick is not None
    return tick


def ats(ticks: list[Tick]) -> list[str]:
    return [f"{tick.at:%m-%d %H:%M:%S.%f}".rstrip("0").rstrip(".") for tick in ticks]


# --- the window

def test_next_tick_is_strictly_after() -> None:
    assert first(Plan(HOURLY), after=T0).at == T0 + timedelta(hours=1)
    assert first(Plan(HOURLY), after=T0 - timedelta(microseconds=1)).at == T0


def test_outputs_are_utc() -> None:
    tick = first(Plan(CronSpec("0 9 * * *", "Asia/Tokyo")), after=T0 - timedelta(hours=1))
    assert tick.at.tzinfo is UTC and tick.fire_at.tzinfo is UTC
    assert tick.at == datetime(2026, 3, 1, 0, tzinfo=UTC)
    assert tick.local.isoformat() == "2026-03-01T09:00:00+09:00"


def test_after_may_be_in_any_zone() -> None:
    after = datetime(2026, 3, 1, 1, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 2026-02-28 16:00Z
    assert first(Plan(HOURLY), after=after).at == datetime(2026, 2, 28, 17, tzinfo=UTC)


def test_start_at_holds_back_earlier_ticks_and_lets_one_at_start_through() -> None:
    start = T0 + timedelta(hours=5)
    assert first(Plan(HOURLY, start_at=start), after=T0).at == start
    assert first(Plan(HOURLY, start_at=start + timedelta(seconds=1)), after=T0).at == (
        start + timedelta(hours=1))


def test_end_at_is_inclusive() -> None:
    plan = Plan(HOURLY, end_at=T0 + timedelta(hours=2))
    assert ats(ticks_between(plan, after=T0, until=T0 + timedelta(days=1))) == [
        "03-01 01:00:00", "03-01 02:00:00"]
    assert next_tick(plan, after=T0 + timedelta(hours=2)) is None


def test_max_runs_counts_runs_so_far() -> None:
    plan = Plan(HOURLY, max_runs=3)
    assert next_tick(plan, after=T0, runs_so_far=2) is not None
    assert next_tick(plan, after=T0, runs_so_far=3) is None
    assert len(ticks_between(plan, after=T0, until=T0 + timedelta(days=1))) == 3
    assert len(ticks_between(plan, after=T0, until=T0 + timedelta(days=1), runs_so_far=2)) == 1


def test_skipped_gap_ticks_do_not_use_up_max_runs() -> None:
    plan = Plan(CronSpec("30 2 * * *", "America/New_York"), max_runs=2)
    ticks = ticks_between(plan, after=datetime(2026, 3, 7, tzinfo=UTC),
                          until=datetime(2026, 3, 20, tzinfo=UTC))
    assert [(f"{t.at:%m-%d %H:%M}", t.runs) for t in ticks] == [
        ("03-07 07:30", True), ("03-08 07:30", False), ("03-09 06:30", True)]


def test_ticks_between_honours_the_limit_and_the_range() -> None:
    plan = Plan(CronSpec("* * * * *"))
    assert len(ticks_between(plan, after=T0, until=T0 + timedelta(days=30), limit=10)) == 10
    assert ticks_between(plan, after=T0, until=T0) == []
    assert ticks_between(plan, after=T0, until=T0 - timedelta(hours=1)) == []


def test_the_ends_of_the_calendar() -> None:
    for zone in ("America/New_York", "Asia/Tokyo", "UTC"):
        plan = Plan(CronSpec("0 0 * * *", zone))
        assert next_tick(plan, after=datetime(9998, 6, 1, tzinfo=UTC)) is None
        assert next_tick(plan, after=datetime.max.replace(tzinfo=UTC)) is None
        assert first(plan, after=datetime.min.replace(tzinfo=UTC)).at.year == 2


# --- intervals and one-shots

def test_fixed_rate_interval_counts_from_its_anchor() -> None:
    anchor = T0 + timedelta(minutes=7, seconds=30, microseconds=250)
    plan = Plan(IntervalSpec(timedelta(minutes=15), anchor))
    assert ats(ticks_between(plan, after=T0, until=T0 + timedelta(minutes=40))) == [
        "03-01 00:07:30.00025", "03-01 00:22:30.00025", "03-01 00:37:30.00025"]
    assert first(plan, after=anchor).at == anchor + timedelta(minutes=15)
    assert first(plan, after=anchor + timedelta(days=365)).at == (
        anchor + timedelta(days=365, minutes=15))


def test_interval_local_time_is_in_the_anchor_zone_and_has_no_notes() -> None:
    anchor = datetime(2026, 3, 8, 1, 0, tzinfo=ZoneInfo("America/New_York"))  # 06:00Z
    plan = Plan(IntervalSpec(timedelta(hours=1), anchor))
    ticks = ticks_between(plan, after=anchor, until=datetime(2026, 3, 8, 9, 0, tzinfo=UTC))
    assert [t.local.isoformat() for t in ticks] == [
        "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00", "2026-03-08T05:00:00-04:00"]
    assert {t.note for t in ticks} == {None}


def test_interval_arithmetic_is_in_real_time_across_dst() -> None:
    # Python adds a timedelta to a zoned datetime on the wall clock; ticks must not.
    zone = ZoneInfo("America/New_York")
    anchor = datetime(2026, 11, 1, 0, 30, tzinfo=zone)  # 04:30Z, an hour before the fold
    plan = Plan(IntervalSpec(timedelta(minutes=30), anchor), start_at=anchor)
    ticks = ticks_between(plan, after=anchor - timedelta(hours=1), until=datetime(2026, 11, 1, 7, tzinfo=UTC))
    assert [f"{t.at:%H:%M}" for t in ticks] == ["04:30", "05:00", "05:30", "06:00", "06:30", "07:00"]
    assert [t.local.isoformat()[11:] for t in ticks][2:4] == ["01:30:00-04:00", "01:00:00-05:00"]


def test_start_at_in_a_zone_is_an_instant() -> None:
    second_one_am = datetime(2026, 11, 1, 1, 0, fold=1, tzinfo=ZoneInfo("America/New_York"))  # 06:00Z
    plan = Plan(CronSpec("*/30 * * * *"), start_at=second_one_am)
    assert first(plan, after=T0).at == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def test_after_completion_waits_one_interval_after_the_last_finish() -> None:
    plan = Plan(IntervalSpec(timedelta(minutes=10), T0, after_completion=True))
    finished = T0 + timedelta(minutes=13, seconds=5)
    assert first(plan, after=finished, last_finished_at=finished).at == (
        finished + timedelta(minutes=10))


def test_after_completion_resumes_its_cadence_after_downtime() -> None:
    plan = Plan(IntervalSpec(timedelta(minutes=10), T0, after_completion=True))
    finished = T0 + timedelta(minutes=13)
    tick = first(plan, after=finished + timedelta(minutes=25), last_finished_at=finished)
    assert tick.at == finished + timedelta(minutes=30)


def test_after_completion_before_any_run_starts_at_the_anchor() -> None:
    plan = Plan(IntervalSpec(timedelta(minutes=10), T0, after_completion=True))
    assert first(plan, after=T0 - timedelta(days=1)).at == T0
    assert first(plan, after=T0 + timedelta(minutes=5)).at == T0 + timedelta(minutes=10)


def test_one_shot() -> None:
    run_at = datetime(2026, 3, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
    plan = Plan(OnceSpec(run_at))
    tick = first(plan, after=T0)
    assert tick.at == run_at and tick.at.tzinfo is UTC and tick.local == run_at
    assert next_tick(plan, after=run_at) is None
    assert len(ticks_between(plan, after=T0, until=run_at)) == 1


# --- jitter

def test_without_jitter_a_tick_fires_at_its_instant() -> None:
    tick = first(Plan(HOURLY), after=T0)
    assert tick.fire_at == tick.at


def test_jitter_is_whole_seconds_in_range_and_the_same_on_every_call() -> None:
    plan = Plan(HOURLY, jitter=timedelta(seconds=90), key="42")
    ticks = ticks_between(plan, after=T0, until=T0 + timedelta(days=10))
    offsets = [t.fire_at - t.at for t in ticks]
    assert all(timedelta(0) <= o < timedelta(seconds=90) and o.microseconds == 0 for o in offsets)
    assert len(set(offsets)) > 30  # spread, not a constant
    assert ticks == ticks_between(plan, after=T0, until=T0 + timedelta(days=10))


def test_jitter_formula_is_blake2b_of_key_and_tick() -> None:
    # Pinned, so any other component (or language) can reproduce fire instants.
    plan = Plan(HOURLY, jitter=timedelta(minutes=5), key="schedule-7")
    tick = first(plan, after=T0)
    digest = blake2b(b"schedule-7|2026-03-01T01:00:00+00:00", digest_size=8).digest()
    assert tick.fire_at - tick.at == timedelta(seconds=int.from_bytes(digest, "big") % 300)


def test_jitter_depends_on_the_key() -> None:
    def offsets(key: str) -> list[timedelta]:
        plan = Plan(HOURLY, jitter=timedelta(hours=1), key=key)
        return [t.fire_at - t.at for t in ticks_between(plan, after=T0, until=T0 + timedelta(days=1))]
    assert offsets("1") != offsets("2")


def test_jitter_below_one_second_is_zero() -> None:
    plan = Plan(HOURLY, jitter=timedelta(milliseconds=900), key="k")
    assert {t.fire_at - t.at for t in ticks_between(plan, after=T0, until=T0 + timedelta(days=1))} == {
        timedelta(0)}


def test_jitter_never_moves_the_identity() -> None:
    plain = ticks_between(Plan(HOURLY), after=T0, until=T0 + timedelta(days=1))
    jittered = ticks_between(Plan(HOURLY, jitter=timedelta(minutes=30), key="k"), after=T0,
                             until=T0 + timedelta(days=1))
    assert [t.at for t in plain] == [t.at for t in jittered]


def test_tick_runs_is_false_only_when_skipped_in_a_gap() -> None:
    at = T0
    assert Tick(at, at, at, None).runs
    assert Tick(at, at, at, "dst_gap_shifted").runs
    assert Tick(at, at, at, "dst_fold_first").runs
    assert not Tick(at, at, at, "dst_gap_skipped").runs
