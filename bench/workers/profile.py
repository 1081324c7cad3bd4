"""Where a fire's time goes: the queries of one dispatch and one execute, and their cost per run.

Used by ``python -m bench.workers`` once its workers are stopped; runs in the driver
process against the benchmark's database.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import chunks


@dataclass
class Profile:
    dispatch_sql: list[str]
    execute_sql: list[str]
    batch: int
    dispatch_ms: float
    execute_ms: tuple[float, float]  # wall, Python CPU; warm connection
    cold_execute_ms: tuple[float, float]  # the same on a new connection, as in a worker
    connect_ms: float
    phases: list[tuple[str, float]]  # run_execute's direct callees, share of its time


def profile_run(schedules: list, *, batch: int, count: int = 300) -> Profile:
    """One dispatch and one ``run_execute`` in this process: their queries, then their cost per run.

    Runs once no worker is alive; the messages published here are dropped afterwards.
    """
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from runs.models import Trigger
    from runs.services.dispatch import DispatchRequest, run_dispatch
    from runs.services.execute import run_execute

    def dispatch(chunk: list) -> list[int]:
        tick = timezone.now()
        with transaction.atomic():  # the publish runs on commit, inside any capture around this
            return [run_dispatch(s, DispatchRequest(trigger=Trigger.MANUAL, tick_at=tick), now=tick).pk
                    for s in chunk]

    def execute(ids: list[int], *, cold: bool = False) -> None:
        for run_id in ids:
            if cold:
                connection.close()  # what Celery's Django fixup does around each task
            run_execute(run_id, owner="bench:profile", now=timezone.now())

    with CaptureQueriesContext(connection) as dispatched:
        [run_id] = dispatch(schedules[:1])
    with CaptureQueriesContext(connection) as executed:
        execute([run_id])
    began = time.perf_counter()
    ids = [run_id for chunk in chunks(schedules[:count], batch) for run_id in dispatch(chunk)]
    dispatch_ms = (time.perf_counter() - began) * 1000 / len(ids)
    third = len(ids) // 3
    warm = _cost(lambda: execute(ids[:third]), third)
    cold = _cost(lambda: execute(ids[third:2 * third], cold=True), third)
    connect = _cost(lambda: [connection.close() or connection.ensure_connection() for _ in range(20)], 20)
    phases = _callee_shares(lambda: execute(ids[2 * third:]), "run_execute")
    return Profile([q["sql"] for q in dispatched.captured_queries], [q["sql"] for q in executed.captured_queries],
                   batch, dispatch_ms, warm, cold, connect[0], phases)


def _cost(work: Callable[[], object], n: int) -> tuple[float, float]:
    """Milliseconds per item: wall clock, and this process's CPU."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return (time.perf_counter() - wall) * 1000 / n, (time.process_time() - cpu) * 1000 / n


def _callee_shares(work: Callable[[], object], name: str) -> list[tuple[str, float]]:
    """Share of ``name``'s time spent in each function it calls directly (under cProfile)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(work)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    top = next(func for func in stats if func[2] == name)
    total = stats[top][3]
    shares = [(f"{Path(func[0]).stem}.{func[2]}", callers[top][3] / total)
              for func, (*_, callers) in stats.items() if top in callers]
    return sorted(shares, key=lambda share: -share[1])


def profile_report(profile: Profile) -> str:
    (warm, warm_cpu), (cold, cold_cpu) = profile.execute_ms, profile.cold_execute_ms
    phases = ", ".join(f"{name} {share:.0%}" for name, share in profile.phases if share >= 0.02)
    lines = [f"Queries per run: dispatch {len(profile.dispatch_sql)} (publish included), "
             f"execute {len(profile.execute_sql)}.",
             f"In this process, per run: dispatch {profile.dispatch_ms:.1f} ms (batches of {profile.batch}); "
             f"run_execute {warm:.1f} ms on a warm connection ({warm_cpu:.1f} ms Python CPU), "
             f"{cold:.1f} ms on a new one ({cold_cpu:.1f} ms CPU); a new PostgreSQL connection "
             f"{profile.connect_ms:.1f} ms.",
             f"run_execute's time by direct callee (cProfile): {phases}.", ""]
    for label, queries in (("dispatch", profile.dispatch_sql), ("execute", profile.execute_sql)):
        lines += [f"{label}:"] + [f"  {i}. {_shorten(sql)}" for i, sql in enumerate(queries, 1)]
    return "\n".join(lines)


def _shorten(sql: str, width: int = 140) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= width else sql[:width - 1] + "…"

