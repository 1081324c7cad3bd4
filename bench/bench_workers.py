"""End-to-end fires per second with two workers, against raw Celery on the same machine.

    .venv/bin/python bench/bench_workers.py [--runs 2000] [--reps 3] [--no-beat]

Side by side in one run, repetitions interleaved so background load hits every
mode alike:

- ``raw``: two bare Celery workers (``bench/workers_raw_app.py``, prefork,
  concurrency 1, Tickwise's delivery settings) consume N no-op tasks sent with
  ``apply_async``; each task records its completion with one ``RPUSH``. This
  is the floor: what the broker and Celery cost with no ledger at all.
- ``dispatch``: two real ``celery -A scheduler_project worker`` processes (the
  command ``./tickwise run`` starts) execute N runs of ``echo`` schedules,
  created through ``run_dispatch`` in batches of 100 per transaction, so each
  batch is published on commit; done when the ledger says ``succeeded``.
- ``beat``: the same, but a real beat process fires the N schedules, made due
  at once.

Throughput is N over the time from the first publish (or dispatch, or the
moment the schedules became due) to the last completion. Latency: ``raw``
completion minus send; ``dispatch`` ``finished_at - created_at``; ``beat``
``finished_at - tick_at``. "Idle" latency is one run at a time, nothing queued.

Isolation: database ``tickwise_bench_workers`` (created and migrated here),
Redis database 3, queues ``bench-workers`` and ``bench-workers-raw``; the
servers come from ``DATABASE_URL``/``REDIS_URL`` or ``./tickwise servers
start``. Every process started here is stopped (its whole process group), on
error too. The whole benchmark is bounded by ``--budget`` seconds.
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "tickwise_bench_workers"
REDIS_DB = 3
QUEUE = "bench-workers"
RAW_QUEUE = "bench-workers-raw"
RAW_KEY_PREFIX = "bench:workers:raw:"
DISPATCH_BATCH = 100
WARMUP = 20
POLL = 0.05


# --- servers, database, environment -----------------------------------------

def _base_urls() -> tuple[str, str]:
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        return os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    from scheduler_project.embedded import ensure_servers

    servers = ensure_servers()  # left running, like `./tickwise servers start`
    return servers.database_url, servers.redis_url


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path, parts.query, ""))


def _create_database(base_url: str) -> None:
    import psycopg

    with psycopg.connect(_with_path(base_url, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def _prepare_environment() -> dict[str, str]:
    base_db, base_redis = _base_urls()
    _create_database(base_db)
    os.environ.update(
        DATABASE_URL=_with_path(base_db, DB_NAME), REDIS_URL=_with_path(base_redis, str(REDIS_DB)),
        TICKWISE_QUEUE=QUEUE, BENCH_RAW_QUEUE=RAW_QUEUE, DJANGO_SETTINGS_MODULE="scheduler_project.settings",
        PYTHONUNBUFFERED="1", TICKWISE_BEAT_MAX_SLEEP="1",
    )
    os.environ.pop("TICKWISE_FAULTS", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    return dict(os.environ)


# --- processes ----------------------------------------------------------------

class Processes:
    """Every child runs in its own session; ``stop_all`` ends each whole group."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, []

    def start(self, name: str, command: list[str], ready: str) -> subprocess.Popen:
        log = self.logs / f"{name}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.append(proc)
        deadline = time.monotonic() + 90
        while ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log}")
            time.sleep(0.2)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=30)
        for proc in self.procs:  # pool children left behind by a dead parent
            _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


def _raw_worker_command(name: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "bench.workers_raw_app", "worker", "--loglevel", "INFO",
            "--concurrency", "1", "--pool", "prefork", "--hostname", f"{name}@%h", "--queues", RAW_QUEUE]


# --- figures ------------------------------------------------------------------

@dataclass
class Sample:
    rate: float
    latencies_ms: list[float]
    note: str = ""
    cpu_ms_per_run: float = float("nan")


@dataclass
class Mode:
    name: str
    samples: list[Sample] = field(default_factory=list)
    idle_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(s.rate for s in self.samples) if self.samples else 0.0


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _median_of(samples: list[Sample], q: float) -> float:
    return statistics.median(_quantile(s.latencies_ms, q) for s in samples) if samples else float("nan")


# --- raw Celery -----------------------------------------------------------------

class Raw:
    def __init__(self) -> None:
        import redis

        from bench.workers_raw_app import noop

        self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])
        self.noop = noop

    def burst(self, n: int, *, timeout: float) -> Sample:
        key = f"{RAW_KEY_PREFIX}{uuid.uuid4().hex}"
        start = time.time()
        for _ in range(n):
            self.noop.apply_async(args=[key, time.time()])
        done = _wait(lambda: self.redis.llen(key), n, timeout=timeout)
        pairs = self._pairs(key)
        end = max(d for _, d in pairs) if pairs else time.time()
        return Sample(rate=len(pairs) / (end - start), latencies_ms=[(d - s) * 1000 for s, d in pairs],
                      note="" if done >= n else f"timed out at {done}/{n}")

    def one(self) -> float:
        key = f"{RAW_KEY_PREFIX}{uuid.uuid4().hex}"
        self.noop.apply_async(args=[key, time.time()])
        _wait(lambda: self.redis.llen(key), 1, timeout=30, poll=0.002)
        sent, done = self._pairs(key)[0]
        return (done - sent) * 1000

    def _pairs(self, key: str) -> list[tuple[float, float]]:
        values = self.redis.lrange(key, 0, -1)
        self.redis.delete(key)
        return [tuple(map(float, v.decode().split(","))) for v in values]  # type: ignore[misc]


def _wait(count: Callable[[], int], n: int, *, timeout: float, poll: float = POLL) -> int:
    deadline = time.monotonic() + timeout
    while (done := count()) < n and time.monotonic() < deadline:
        time.sleep(poll)
    return done


# --- Tickwise -------------------------------------------------------------------

class Ledger:
    """Runs of the benchmark's ``echo`` schedules, one per schedule per repetition."""

    def __init__(self, pool_size: int) -> None:
        self.schedules = _schedule_pool(pool_size)

    def dispatch_burst(self, n: int, *, timeout: float) -> Sample:
        from django.db import transaction
        from django.utils import timezone

        from runs.models import Trigger
        from runs.services.dispatch import DispatchRequest, run_dispatch

        tick = timezone.now()
        start = time.time()
        for chunk in _chunks(self.schedules[:n], DISPATCH_BATCH):
            now = timezone.now()
            with transaction.atomic():  # published when the batch commits
                for schedule in chunk:
                    run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=tick), now=now)
        return self._outcome(tick, n, start=start, timeout=timeout, since="created_at")

    def beat_burst(self, n: int, *, timeout: float) -> Sample:
        from django.utils import timezone

        from schedules.models import Schedule
        from schedules.notify import beat_wake_now

        tick = timezone.now()
        start = time.time()
        # Fixture shortcut: make N one-shot schedules due now in one statement
        # (the admin path, schedule_save, costs a transaction per schedule).
        Schedule.objects.filter(id__in=[s.id for s in self.schedules[:n]]).update(
            run_at=tick, next_tick_at=tick, next_fire_at=tick)
        beat_wake_now()
        return self._outcome(tick, n, start=start, timeout=timeout, since="tick_at")

    def one(self) -> float:
        from django.db import transaction
        from django.utils import timezone

        from runs.models import Run, RunState, Trigger
        from runs.services.dispatch import DispatchRequest, run_dispatch

        now = timezone.now()
        with transaction.atomic():
            run = run_dispatch(self.schedules[0], DispatchRequest(trigger=Trigger.MANUAL, tick_at=now), now=now)
        assert run is not None
        _wait(lambda: Run.objects.filter(id=run.pk, state=RunState.SUCCEEDED).count(), 1, timeout=30, poll=0.002)
        run.refresh_from_db()
        return (run.finished_at - run.created_at).total_seconds() * 1000 if run.finished_at else float("nan")

    def _outcome(self, tick: datetime, n: int, *, start: float, timeout: float, since: str) -> Sample:
        from runs.models import TERMINAL_STATES, Run, RunState

        runs = Run.objects.filter(tick_at=tick)
        done = _wait(lambda: runs.filter(state__in=TERMINAL_STATES).count(), n, timeout=timeout)
        rows = list(runs.filter(state=RunState.SUCCEEDED).values_list(since, "finished_at"))
        end = max(f for _, f in rows).timestamp() if rows else time.time()
        note = "" if done >= n else f"timed out at {done}/{n}"
        if len(rows) < done:
            note = f"{done - len(rows)} not succeeded " + note
        return Sample(rate=len(rows) / (end - start), note=note.strip(),
                      latencies_ms=[(f - s).total_seconds() * 1000 for s, f in rows])


def _schedule_pool(size: int) -> list:
    """``size`` one-shot ``echo`` schedules, parked far in the future (reused across invocations)."""
    from datetime import timezone as tz

    from schedules.models import Agent, Schedule

    agent, _ = Agent.objects.get_or_create(name="bench-echo", defaults={"adapter": "echo", "config": {}})
    parked = datetime(2100, 1, 1, tzinfo=tz.utc)
    existing = Schedule.objects.filter(agent=agent).count()
    Schedule.objects.bulk_create(
        Schedule(agent=agent, name=f"w{i}", kind="once", run_at=parked, input_template="{{schedule}} at {{tick_at}} (#{{run_number}})")
        for i in range(existing, size))
    Schedule.objects.filter(agent=agent).update(next_tick_at=None, next_fire_at=None, paused=False)
    return list(Schedule.objects.filter(agent=agent).select_related("agent").order_by("id")[:size])


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _reset_state() -> None:
    """Empty this benchmark's ledger and queues (its own database and Redis db only)."""
    import redis
    from django.db import connection

    from runs.models import AgentCall, Run

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Run._meta.db_table}, {AgentCall._meta.db_table} CASCADE")
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.delete(QUEUE, RAW_QUEUE, "unacked", "unacked_index", "unacked_mutex")
    for key in client.scan_iter(f"{RAW_KEY_PREFIX}*"):
        client.delete(key)


# --- where the time goes ----------------------------------------------------------

@dataclass
class Profile:
    dispatch_sql: list[str]
    execute_sql: list[str]
    dispatch_ms: float
    execute_ms: float
    connect_ms: float


def _profile(ledger: Ledger, *, count: int = 200) -> Profile:
    """Queries of one dispatch and one ``run_execute`` in this process, then their cost per run.

    Runs with no worker alive: the messages published here are dropped afterwards.
    """
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from runs.models import Trigger
    from runs.services.dispatch import DispatchRequest, run_dispatch
    from runs.services.execute import run_execute

    tick = timezone.now()
    with CaptureQueriesContext(connection) as dispatched:
        with transaction.atomic():  # the publish (on commit) is inside the capture
            run = run_dispatch(ledger.schedules[0], DispatchRequest(trigger=Trigger.MANUAL, tick_at=tick), now=tick)
    assert run is not None
    with CaptureQueriesContext(connection) as executed:
        run_execute(run.pk, owner="bench:profile", now=timezone.now())

    tick = timezone.now()
    began = time.perf_counter()
    ids = []
    for chunk in _chunks(ledger.schedules[:count], DISPATCH_BATCH):
        with transaction.atomic():
            ids += [run_dispatch(s, DispatchRequest(trigger=Trigger.MANUAL, tick_at=tick), now=tick).pk  # type: ignore[union-attr]
                    for s in chunk]
    dispatch_ms = (time.perf_counter() - began) * 1000 / len(ids)
    began = time.perf_counter()
    for run_id in ids:
        run_execute(run_id, owner="bench:profile", now=tick)
    execute_ms = (time.perf_counter() - began) * 1000 / len(ids)
    began = time.perf_counter()
    for _ in range(20):
        connection.close()
        connection.ensure_connection()
    connect_ms = (time.perf_counter() - began) * 1000 / 20
    return Profile([q["sql"] for q in dispatched.captured_queries], [q["sql"] for q in executed.captured_queries],
                   dispatch_ms, execute_ms, connect_ms)


class MachineCpu:
    """Busy CPU time of the whole machine (``/proc/stat``): this benchmark plus anything else running."""

    def __init__(self) -> None:
        self.start = self.busy_seconds()

    @staticmethod
    def busy_seconds() -> float:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except OSError:
            return float("nan")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _measured(run: Callable[[], Sample], n: int) -> Sample:
    cpu = MachineCpu()
    sample = run()
    sample.cpu_ms_per_run = (MachineCpu.busy_seconds() - cpu.start) * 1000 / n
    return sample


# --- the run ----------------------------------------------------------------------

def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _start_processes(procs: Processes, *, beat: bool) -> None:
    from scheduler_project import cli

    for i in (1, 2):
        procs.start(f"raw{i}", _raw_worker_command(f"bench-raw{i}"), ready="ready.")
        procs.start(f"worker{i}", cli.worker_command(f"bench-worker{i}"), ready="ready.")
    if beat:
        procs.start("beat", cli.beat_command(), ready="beat: Starting")


def _run_modes(args: argparse.Namespace, raw: Raw, ledger: Ledger, modes: dict[str, Mode],
               deadline: float) -> None:
    bursts: dict[str, Callable[[int, float], Sample]] = {
        "raw": lambda n, t: raw.burst(n, timeout=t),
        "dispatch": lambda n, t: ledger.dispatch_burst(n, timeout=t),
        "beat": lambda n, t: ledger.beat_burst(n, timeout=t),
    }
    active = [name for name in modes]
    for name in active:  # every pool child imports its code and connects before timing starts
        bursts[name](WARMUP, 60)
    for rep in range(args.reps):
        for name in active:
            remaining = deadline - time.monotonic()
            if remaining < 30:
                print(f"budget spent: stopping before {name} repetition {rep + 1}", flush=True)
                return
            sample = _measured(lambda: bursts[name](args.runs, min(args.rep_timeout, remaining - 20)), args.runs)
            modes[name].samples.append(sample)
            print(f"rep {rep + 1} {name:8} {sample.rate:8.1f} fires/s {sample.note}", flush=True)
    ones: dict[str, Callable[[], float]] = {"raw": raw.one, "dispatch": ledger.one}
    for name, one in ones.items():
        modes[name].idle_ms = [one() for _ in range(args.idle)]


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _report(args: argparse.Namespace, modes: dict[str, Mode], profile: Profile | None, load: tuple) -> str:
    floor = modes["raw"].rate
    lines = [
        f"{args.runs} runs per repetition, median of {len(modes['raw'].samples)} repetitions; "
        f"2 workers (prefork, concurrency 1), `echo` adapter; {os.cpu_count()} CPUs, {platform.python_version()}, "
        f"load average {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        "",
        "| mode | fires/s (median) | each repetition | vs raw | burst latency p50 / p99 ms "
        "| idle latency p50 / p99 ms | machine CPU ms per run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode in modes.values():
        each = ", ".join(f"{s.rate:.0f}" + (f" ({s.note})" if s.note else "") for s in mode.samples)
        ratio = f"{mode.rate / floor:.2f}" if floor else "–"
        cpu = statistics.median(s.cpu_ms_per_run for s in mode.samples) if mode.samples else float("nan")
        idle = (f"{_fmt(_quantile(mode.idle_ms, 0.5))} / {_fmt(_quantile(mode.idle_ms, 0.99))}"
                if mode.idle_ms else "–")
        lines.append(f"| {mode.name} | {mode.rate:.0f} | {each} | {ratio} | "
                     f"{_fmt(_median_of(mode.samples, 0.5))} / {_fmt(_median_of(mode.samples, 0.99))} | "
                     f"{idle} | {_fmt(cpu)} |")
    worst = min(m.rate for name, m in modes.items() if name != "raw") / floor if floor else 0.0
    lines += ["", f"Bar (Tickwise at least half of raw Celery): {'met' if worst >= 0.5 else 'NOT met'} "
                  f"(worst ratio {worst:.2f})"]
    if profile:
        lines += _profile_lines(profile)
    return "\n".join(lines)


def _profile_lines(profile: Profile) -> list[str]:
    lines = ["", f"Queries per run: dispatch {len(profile.dispatch_sql)}, execute {len(profile.execute_sql)}. "
                 f"In-process cost per run: dispatch {profile.dispatch_ms:.2f} ms (batches of {DISPATCH_BATCH}, "
                 f"publish included), run_execute {profile.execute_ms:.2f} ms (warm connection); "
                 f"a new PostgreSQL connection {profile.connect_ms:.2f} ms.", ""]
    for label, queries in (("dispatch", profile.dispatch_sql), ("execute", profile.execute_sql)):
        lines += [f"{label}:"] + [f"  {i}. {_shorten(sql)}" for i, sql in enumerate(queries, 1)]
    return lines


def _shorten(sql: str, width: int = 150) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= width else sql[:width - 1] + "…"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000, help="runs (tasks) per repetition")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each mode (medians reported)")
    parser.add_argument("--idle", type=int, default=50, help="one-at-a-time runs for the idle latency")
    parser.add_argument("--no-beat", dest="beat", action="store_false", help="skip the beat mode")
    parser.add_argument("--rep-timeout", type=float, default=120.0, help="seconds one repetition may take")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds the whole benchmark may take")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    deadline = time.monotonic() + args.budget
    load = os.getloadavg()
    env = _prepare_environment()
    import django

    django.setup()
    _reset_state()
    ledger, raw = Ledger(args.runs), Raw()
    modes = {"raw": Mode("raw Celery `apply_async` no-op (floor)"),
             "dispatch": Mode("Tickwise: `run_dispatch` → workers"),
             **({"beat": Mode("Tickwise: beat fires due schedules → workers")} if args.beat else {})}
    logs = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    procs = Processes(env, logs)
    try:
        _start_processes(procs, beat=args.beat)
        _run_modes(args, raw, ledger, modes, deadline)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        print(f"process logs: {logs}", flush=True)
    profile = _profile(ledger)
    _reset_state()
    print(_report(args, modes, profile, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
