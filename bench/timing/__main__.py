"""Fire-time engine benchmark: Tickwise's timing module next to croniter's own tz handling.

    .venv/bin/python -m bench.timing [--repeat 5] [--schedules 100000] [--per-expression 2000]

Prints next-fire computations per second for a mix of expressions over 20
zones, the time to compute next_fire_at for N schedules, both side by side
with ``croniter(expr, aware_start).get_next(datetime)`` on the same inputs
(medians of the repeats), and how often croniter's answer around the 2026 DST
transitions differs from the fire-time contract (dst_gap=skip, dst_fold=first).
"""
from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import tzdata
from croniter import croniter

from bench.common import machine, median
from core.timing import CronSpec, Plan, next_tick, validate_timezone
from core.timing.zones import zone_rules

ZONES = [
    "UTC", "America/New_York", "America/Los_Angeles", "America/Sao_Paulo", "America/St_Johns",
    "America/Mexico_City", "America/Santiago", "Europe/London", "Europe/Berlin", "Europe/Moscow",
    "Africa/Casablanca", "Africa/Cairo", "Asia/Kolkata", "Asia/Tehran", "Asia/Tokyo",
    "Asia/Kathmandu", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland",
    "Pacific/Chatham",
]
EXPRESSIONS = [
    "*/5 * * * *", "0 * * * *", "30 2 * * *", "30 1 * * *", "0 9 * * MON-FRI",
    "15 3 1 * *", "0 0 * * 0", "*/15 1-3 * * *", "@daily", "0 12 29 2 *",
]
# Expressions whose wall times sit in or next to the usual transition hours.
DST_EXPRESSIONS = ["30 2 * * *", "30 1 * * *", "0 2 * * *", "0 3 * * *", "45 2 * * *",
                   "*/30 * * * *", "0 * * * *", "*/15 1-3 * * *"]
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)


def instants(n: int, seed: int) -> list[datetime]:
    rng = random.Random(seed)
    return [YEAR_START + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(n)]


def tickwise_next(expr: str, zone: str, after: datetime) -> datetime | None:
    tick = next_tick(Plan(CronSpec(expr, zone)), after=after)
    return None if tick is None else tick.at


def croniter_next(expr: str, zone: str, after: datetime) -> datetime:
    return croniter(expr, after.astimezone(validate_timezone(zone))).get_next(datetime)


def median_rate(fn: Callable[[str, str, datetime], datetime | None], cases: list[tuple[str, str, datetime]],
                repeat: int) -> float:
    for expr, zone, after in cases:  # warm up: zone loading and parsing are one-off costs
        fn(expr, zone, after)
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        for expr, zone, after in cases:
            fn(expr, zone, after)
        rates.append(len(cases) / (time.perf_counter() - start))
    return median(rates)


def throughput_table(repeat: int, per_expression: int) -> None:
    print(f"\nnext-fire computations per second ({per_expression} random instants in 2026 per "
          f"expression, cycling over {len(ZONES)} zones; median of {repeat})")
    print(f"{'expression':<18}{'tickwise/s':>12}{'croniter/s':>12}{'ratio':>8}")
    everything: list[tuple[str, str, datetime]] = []
    for i, expr in enumerate(EXPRESSIONS):
        cases = [(expr, ZONES[j % len(ZONES)], at) for j, at in enumerate(instants(per_expression, i))]
        everything += cases
        ours, theirs = median_rate(tickwise_next, cases, repeat), median_rate(croniter_next, cases, repeat)
        print(f"{expr:<18}{ours:>12,.0f}{theirs:>12,.0f}{ours / theirs:>7.1f}x")
    ours, theirs = median_rate(tickwise_next, everything, repeat), median_rate(croniter_next, everything, repeat)
    print(f"{'all (mixed)':<18}{ours:>12,.0f}{theirs:>12,.0f}{ours / theirs:>7.1f}x")


def fleet_table(repeat: int, count: int) -> None:
    rng = random.Random(7)
    fleet = [(rng.choice(EXPRESSIONS), rng.choice(ZONES), str(i)) for i in range(count)]
    now = datetime(2026, 3, 28, 23, 0, 17, tzinfo=UTC)  # the night Europe springs forward

    def ours() -> None:
        for expr, zone, key in fleet:
            next_tick(Plan(CronSpec(expr, zone), jitter=timedelta(seconds=30), key=key), after=now)

    def theirs() -> None:
        for expr, zone, _ in fleet:
            croniter(expr, now.astimezone(validate_timezone(zone))).get_next(datetime)

    timings: dict[str, list[float]] = {name: [] for name in ("tickwise", "croniter")}
    for _ in range(repeat):
        for name, run in (("tickwise", ours), ("croniter", theirs)):
            start = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - start)
    a, b = (median(timings[n]) for n in ("tickwise", "croniter"))
    print(f"\nnext_fire_at for {count:,} schedules (random expression and zone each, "
          f"tickwise with 30 s jitter; median of {repeat})")
    print(f"{'':<18}{'tickwise':>12}{'croniter':>12}{'ratio':>8}")
    print(f"{'seconds':<18}{a:>12.2f}{b:>12.2f}{b / a:>7.1f}x")
    print(f"{'min / max s':<18}{min(timings['tickwise']):>6.2f}/{max(timings['tickwise']):<5.2f}"
          f"{min(timings['croniter']):>6.2f}/{max(timings['croniter']):<5.2f}")


def transitions_2026(zone: str) -> list[tuple[int, int]]:
    rules, found, cursor = zone_rules(zone), [], int(YEAR_START.timestamp())
    while (change := rules.transition_after(cursor)) and change.at < cursor + 400 * 86400:
        if change.at >= int(datetime(2027, 1, 1, tzinfo=UTC).timestamp()):
            break
        found.append((change.at, change.delta))
        cursor = change.at
    return found


def contract_next(expr: str, zone: str, after: datetime) -> datetime:
    """The next instant the schedule *runs* (a skipped gap tick is not a run)."""
    plan, tick = Plan(CronSpec(expr, zone)), None
    while tick is None or not tick.runs:
        tick = next_tick(plan, after=after if tick is None else tick.at)
    return tick.at


def disagreement_table() -> None:
    counts: Counter[str] = Counter()
    examples: dict[tuple[str, str], str] = {}
    for zone in ZONES:
        for at, delta in transitions_2026(zone):
            kind = "gap" if delta > 0 else "fold"
            change = datetime.fromtimestamp(at, UTC)
            for expr in DST_EXPRESSIONS:
                for step in range(0, 12 * 60, 7):  # every 7 minutes from 6 h before to 6 h after
                    after = change - timedelta(hours=6) + timedelta(minutes=step)
                    counts[f"{kind} queries"] += 1
                    want = contract_next(expr, zone, after)
                    got: datetime | str
                    try:
                        got = croniter_next(expr, zone, after).astimezone(UTC)
                    except Exception as error:  # croniter gives up on some DST cases
                        counts[f"{kind} croniter errors"] += 1
                        got = type(error).__name__
                    if got != want:
                        counts[f"{kind} disagreements"] += 1
                        examples.setdefault((zone, expr), (
                            f"  {zone:<20} {expr:<15} after {after:%Y-%m-%d %H:%M}Z: "
                            f"contract {want:%m-%d %H:%M}Z, croniter {_fmt(got)}"))
    control = control_disagreements()
    print("\ncroniter's own tz handling vs the contract (dst_gap=skip, dst_fold=first), "
          f"{len(DST_EXPRESSIONS)} expressions, queries every 7 min from 6 h before to 6 h after "
          f"each 2026 transition of the {len(ZONES)} zones")
    for kind in ("gap", "fold"):
        q, d = counts[f"{kind} queries"], counts[f"{kind} disagreements"]
        print(f"  {kind:<5} {q:>6} queries  {d:>5} disagree ({d / max(q, 1):.1%})  "
              f"{counts[f'{kind} croniter errors']} croniter errors")
    print(f"  control (random instants, no transition within a day): {control}")
    print(f"  zone/expression pairs affected: {len(examples)}; a first example for some of them:")
    print("\n".join(list(examples.values())[::max(1, len(examples) // 8)]))


def control_disagreements() -> str:
    rng, checked, differ = random.Random(11), 0, 0
    for _ in range(3000):
        expr, zone, after = rng.choice(DST_EXPRESSIONS), rng.choice(ZONES), instants(1, rng.randrange(2**32))[0]
        rules, secs = zone_rules(zone), int(after.timestamp())
        near = [rules.transition_after(secs - 86400), rules.transition_at_or_before(secs + 86400)]
        if any(c is not None and abs(c.at - secs) < 2 * 86400 for c in near):
            continue
        checked += 1
        differ += contract_next(expr, zone, after) != croniter_next(expr, zone, after)
    return f"{differ} of {checked} differ"


def _fmt(value: datetime | str) -> str:
    return value if isinstance(value, str) else f"{value:%m-%d %H:%M}Z"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.timing", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--per-expression", type=int, default=2_000)
    args = parser.parse_args()
    print(f"Tickwise timing benchmark: {machine('croniter')}, tzdata {tzdata.IANA_VERSION}")
    throughput_table(args.repeat, args.per_expression)
    fleet_table(args.repeat, args.schedules)
    disagreement_table()


if __name__ == "__main__":
    main()
