"""End-to-end fires per second with two workers, against raw Celery on the same machine.

    .venv/bin/python bench/bench_workers.py [--runs 1000] [--reps 3] [--no-beat]

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
- ``beat``: the same, but a real beat process fires the N schedules, all made
  due at once.

Throughput is N over the time from the first publish (or dispatch, or the
moment the schedules became due) to the last completion. Latency: ``raw``
completion minus send; ``dispatch`` ``finished_at - created_at``; ``beat``
``finished_at - tick_at``. "Idle" latency is one run at a time, nothing queued.
CPU per run is read from ``/proc`` for the worker process groups, for the
dispatching process (this driver, or the beat), and for the PostgreSQL and
Redis servers (whole servers: anything else they serve meanwhile counts too).

Isolation: database ``tickwise_bench_workers`` (created and migrated here),
Redis database 3, queues ``bench-workers*``; the servers come from
``DATABASE_URL``/``REDIS_URL`` or ``./tickwise servers start``. Every process
started here is stopped (its whole process group), on error too. The whole
benchmark is bounded by ``--budget`` seconds.
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
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.workers_profile import profile_report, profile_run  # noqa: E402

DB_NAME = "tickwise_bench_workers"
REDIS_DB = 3
QUEUE = "bench-workers"
RAW_QUEUE = "bench-workers-raw"
RAW_KEY_PREFIX = "bench:workers:raw:"
DISPATCH_BATCH = 100
WARMUP = 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def _reset_state() -> None:
    """Empty this benchmark's ledger and queues (its own database and Redis database only)."""
    import redis
    from django.db import connection

    from runs.models import AgentCall, Run

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Run._meta.db_table}, {AgentCall._meta.db_table} CASCADE")
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.delete(QUEUE, RAW_QUEUE, "unacked", "unacked_index", "unacked_mutex")
    for key in client.scan_iter(f"{RAW_KEY_PREFIX}*"):
        client.delete(key)


# --- processes ----------------------------------------------------------------

class Processes:
    """Every child leads its own process group; ``stop_all`` ends each whole group."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], ready: str, extra_env: dict[str, str] | None = None) -> None:
        log = self.logs / f"{name}.log"
        with open(log, "w") as out:
            self.procs[name] = proc = subprocess.Popen(
                command, cwd=ROOT, env={**self.env, **(extra_env or {})}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 90
        while ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log}")
            time.sleep(0.2)

    def cpu_seconds(self, names: Sequence[str]) -> float:
        """User + system CPU of every live process in these groups (pool children included)."""
        groups = {self.procs[name].pid for name in names}
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # exited meanwhile
            if int(fields[2]) in groups:
                total += int(fields[11]) + int(fields[12])
        return total / CLOCK_TICKS

    def stop_all(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=30)
        for proc in self.procs.values():  # pool children a parent left behind
            _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


def _start_processes(procs: Processes, *, beat: bool) -> None:
    from scheduler_project import cli

    raw = [sys.executable, "-m", "celery", "-A", "bench.workers_raw_app", "worker", "--loglevel", "INFO",
           "--concurrency", "1", "--pool", "prefork", "--queues", RAW_QUEUE]
    for i in (1, 2):
        procs.start(f"raw{i}", [*raw, "--hostname", f"bench-raw{i}@%h"], ready="ready.")
        procs.start(f"worker{i}", cli.worker_command(f"bench-worker{i}"), ready="ready.")
    if beat:
        procs.start("beat", cli.beat_command(), ready="beat: Starting")


def _route_execute(name: str, args: object, kwargs: object, options: object, task: object = None,
                   **kw: object) -> dict[str, str] | None:
    return {"queue": QUEUE} if name == "runs.execute" else None


# --- figures ------------------------------------------------------------------

@dataclass
class Sample:
    rate: float
    latencies_ms: list[float]
    note: str = ""
    seconds: float = 0.0
    worker_cpu_ms: float = float("nan")  # per run
    dispatcher_cpu_ms: float = float("nan")  # per run
    database_cpu_ms: float = float("nan")  # per run, the whole PostgreSQL server
    redis_cpu_ms: float = float("nan")  # per run, the whole Redis server
    machine_busy: float = float("nan")  # share of all CPUs busy, anything running included


@dataclass
class Mode:
    title: str
    workers: tuple[str, ...]
    dispatcher: str | None  # a process group, or None for this driver
    burst: Callable[[int, float], Sample]
    samples: list[Sample] = field(default_factory=list)
    idle_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(s.rate for s in self.samples) if self.samples else 0.0

    def median(self, value: Callable[[Sample], float]) -> float:
        return statistics.median(value(s) for s in self.samples) if self.samples else float("nan")


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _wait(count: Callable[[], int], n: int, *, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    poll = 0.005 if n == 1 else 0.05
    while (done := count()) < n and time.monotonic() < deadline:
        time.sleep(poll)
    return done


def _server_cpu_seconds() -> tuple[float, float]:
    """User + system CPU of the PostgreSQL and Redis servers on this machine.

    PostgreSQL forks a backend per connection: the ones that exited count
    through the postmaster's children time, the live ones through their own.
    """
    postgres = redis = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        name, fields = head.split("(", 1)[1], tail.split()
        own = int(fields[11]) + int(fields[12])
        if name == "postgres":
            postgres += own + (int(fields[13]) + int(fields[14]) if _is_postmaster(int(fields[1])) else 0)
        elif name.startswith("redis-server"):
            redis += own
    return postgres / CLOCK_TICKS, redis / CLOCK_TICKS


def _is_postmaster(parent: int) -> bool:
    try:
        return Path(f"/proc/{parent}/comm").read_text().strip() != "postgres"
    except OSError:
        return True


def _machine_busy_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS  # minus idle and iowait


# --- raw Celery -----------------------------------------------------------------

class Raw:
    def __init__(self) -> None:
        import redis

        from bench.workers_raw_app import noop

        self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])
        self.noop = noop

    def burst(self, n: int, timeout: float) -> Sample:
        key = f"{RAW_KEY_PREFIX}{uuid.uuid4().hex}"
        start = time.time()
        for _ in range(n):
            self.noop.apply_async(args=[key, time.time()])
        done = _wait(lambda: self.redis.llen(key), n, timeout=timeout)
        pairs = [tuple(map(float, v.decode().split(","))) for v in self.redis.lrange(key, 0, -1)]
        self.redis.delete(key)
        end = max(d for _, d in pairs) if pairs else time.time()
        return Sample(rate=len(pairs) / (end - start), latencies_ms=[(d - s) * 1000 for s, d in pairs],
                      note="" if done >= n else f"timed out at {done}/{n}")


# --- Tickwise -------------------------------------------------------------------

class Ledger:
    """Runs of the benchmark's ``echo`` schedules: one per schedule per repetition."""

    def __init__(self, pool_size: int) -> None:
        self.schedules = _schedule_pool(pool_size)

    def dispatch_burst(self, n: int, timeout: float) -> Sample:
        from django.db import transaction
        from django.utils import timezone

        from runs.models import Trigger
        from runs.services.dispatch import DispatchRequest, run_dispatch

        tick = timezone.now()
        start = time.time()
        for chunk in _chunks(self.schedules[:n], DISPATCH_BATCH):
            now = timezone.now()
            with transaction.atomic():  # the batch is published when it commits
                for schedule in chunk:
                    run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=tick), now=now)
        return self._outcome(tick, n, start=start, timeout=timeout, since="created_at")

    def beat_burst(self, n: int, timeout: float) -> Sample:
        from django.utils import timezone

        from schedules.models import Schedule
        from schedules.notify import beat_wake_now

        tick = timezone.now()
        start = time.time()
        # Fixture shortcut: N one-shot schedules made due now in one statement
        # (``schedule_save``, the admin's path, costs a transaction per schedule).
        Schedule.objects.filter(id__in=[s.id for s in self.schedules[:n]]).update(
            run_at=tick, next_tick_at=tick, next_fire_at=tick)
        beat_wake_now()
        return self._outcome(tick, n, start=start, timeout=timeout, since="tick_at")

    def _outcome(self, tick: datetime, n: int, *, start: float, timeout: float, since: str) -> Sample:
        from runs.models import TERMINAL_STATES, Run, RunState

        runs = Run.objects.filter(tick_at=tick)
        done = _wait(lambda: runs.filter(state__in=TERMINAL_STATES).count(), n, timeout=timeout)
        rows = list(runs.filter(state=RunState.SUCCEEDED).values_list(since, "finished_at"))
        end = max(f for _, f in rows).timestamp() if rows else time.time()
        notes = [f"{done - len(rows)} not succeeded"] if len(rows) < done else []
        notes += [f"timed out at {done}/{n}"] if done < n else []
        return Sample(rate=len(rows) / (end - start), note=", ".join(notes),
                      latencies_ms=[(f - s).total_seconds() * 1000 for s, f in rows])


def _schedule_pool(size: int) -> list:
    """``size`` one-shot ``echo`` schedules, parked far in the future, kept across invocations."""

    from schedules.models import Agent, Schedule

    agent, _ = Agent.objects.get_or_create(name="bench-echo", defaults={"adapter": "echo", "config": {}})
    parked = datetime(2100, 1, 1, tzinfo=UTC)
    existing = Schedule.objects.filter(agent=agent).count()
    Schedule.objects.bulk_create(
        Schedule(agent=agent, name=f"w{i}", kind="once", run_at=parked,
                 input_template="{{schedule}} at {{tick_at}} (#{{run_number}})")
        for i in range(existing, size))
    Schedule.objects.filter(agent=agent).update(next_tick_at=None, next_fire_at=None, paused=False)
    return list(Schedule.objects.filter(agent=agent).select_related("agent").order_by("id")[:size])


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# --- the run ----------------------------------------------------------------------

def _measure(mode: Mode, procs: Processes, n: int, timeout: float) -> Sample:
    def dispatcher_cpu() -> float:
        return procs.cpu_seconds([mode.dispatcher]) if mode.dispatcher else time.process_time()

    workers, dispatcher, machine = procs.cpu_seconds(mode.workers), dispatcher_cpu(), _machine_busy_seconds()
    database, redis = _server_cpu_seconds()
    began = time.monotonic()
    sample = mode.burst(n, timeout)
    sample.seconds = time.monotonic() - began
    sample.worker_cpu_ms = (procs.cpu_seconds(mode.workers) - workers) * 1000 / n
    sample.dispatcher_cpu_ms = (dispatcher_cpu() - dispatcher) * 1000 / n
    database_after, redis_after = _server_cpu_seconds()
    sample.database_cpu_ms = (database_after - database) * 1000 / n
    sample.redis_cpu_ms = (redis_after - redis) * 1000 / n
    sample.machine_busy = (_machine_busy_seconds() - machine) / (sample.seconds * (os.cpu_count() or 1))
    return sample


def _run_modes(args: argparse.Namespace, modes: dict[str, Mode], procs: Processes, deadline: float) -> None:
    for mode in modes.values():  # every pool child imports its code and connects before timing starts
        mode.burst(WARMUP, 60)
    for rep in range(1, args.reps + 1):
        for name, mode in modes.items():
            remaining = deadline - time.monotonic()
            expected = 1.5 * max((s.seconds for s in mode.samples), default=10.0)
            if remaining - 30 < expected:
                print(f"budget: stopping before {name} repetition {rep}", flush=True)
                return
            sample = _measure(mode, procs, args.runs, min(args.rep_timeout, remaining - 30))
            mode.samples.append(sample)
            print(f"rep {rep} {name:8} {sample.rate:7.1f} fires/s  {sample.seconds:5.1f}s {sample.note}", flush=True)
    for mode in modes.values():
        mode.idle_ms = [mode.burst(1, 30).latencies_ms[0] for _ in range(args.idle)]


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _report(args: argparse.Namespace, modes: dict[str, Mode], load: tuple) -> str:
    floor = modes["raw"].rate
    lines = [
        f"{args.runs} runs per repetition, median of {len(modes['raw'].samples)}; 2 workers (prefork, "
        f"concurrency 1); `echo` adapter; {os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after",
        "",
        "| mode | fires/s | each repetition | vs raw | burst latency p50 / p99 ms | idle latency p50 / p99 ms "
        "| CPU ms per run: workers / dispatcher / PostgreSQL / Redis | machine busy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode in modes.values():
        each = ", ".join(f"{s.rate:.0f}" + (f" ({s.note})" if s.note else "") for s in mode.samples)
        lines.append(
            f"| {mode.title} | {mode.rate:.0f} | {each} | {mode.rate / floor:.2f} | "
            f"{_fmt(mode.median(lambda s: _quantile(s.latencies_ms, 0.5)))} / "
            f"{_fmt(mode.median(lambda s: _quantile(s.latencies_ms, 0.99)))} | "
            f"{_fmt(_quantile(mode.idle_ms, 0.5))} / {_fmt(_quantile(mode.idle_ms, 0.99))} | "
            f"{mode.median(lambda s: s.worker_cpu_ms):.1f} / {mode.median(lambda s: s.dispatcher_cpu_ms):.1f} / "
            f"{mode.median(lambda s: s.database_cpu_ms):.1f} / {mode.median(lambda s: s.redis_cpu_ms):.1f} | "
            f"{mode.median(lambda s: s.machine_busy):.0%} |")
    worst = min(m.rate for name, m in modes.items() if name in ("dispatch", "beat")) / floor
    lines += ["", f"Bar (Tickwise at least half of raw Celery): {'met' if worst >= 0.5 else 'NOT met'}, "
                  f"worst ratio {worst:.2f}.", ""]
    return "\n".join(lines)


def _modes(args: argparse.Namespace, raw: Raw, ledger: Ledger) -> dict[str, Mode]:
    workers = ("worker1", "worker2")
    modes = {
        "raw": Mode("raw Celery `apply_async` no-op (floor)", ("raw1", "raw2"), None, raw.burst),
        "dispatch": Mode("Tickwise: `run_dispatch` → workers", workers, None, ledger.dispatch_burst),
        "beat": Mode("Tickwise: beat fires due schedules → workers", workers, "beat", ledger.beat_burst),
    }
    return {name: mode for name, mode in modes.items() if name != "beat" or args.beat}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="runs (tasks) per repetition")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each mode (medians reported)")
    parser.add_argument("--idle", type=int, default=30, help="one-at-a-time runs for the idle latency")
    parser.add_argument("--no-beat", dest="beat", action="store_false", help="skip the beat mode")
    parser.add_argument("--rep-timeout", type=float, default=120.0, help="seconds one repetition may take")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds the whole benchmark may take")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    deadline = time.monotonic() + args.budget
    load = os.getloadavg()
    env = _prepare_environment()
    import django

    django.setup()
    import runs.services.execute  # noqa: F401  (a broken tree fails here, before any worker starts)
    from scheduler_project.celery import app

    app.conf.task_routes = (_route_execute,)
    _reset_state()
    ledger = Ledger(args.runs)
    modes = _modes(args, Raw(), ledger)
    procs = Processes(env, Path(tempfile.mkdtemp(prefix="bench-workers-")))
    try:
        _start_processes(procs, beat=args.beat)
        _run_modes(args, modes, procs, deadline)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        print(f"process logs: {procs.logs}", flush=True)
    print(_report(args, modes, load), flush=True)
    try:
        print(profile_report(profile_run(ledger.schedules, batch=DISPATCH_BATCH)))
    finally:
        _reset_state()
    return 0


if __name__ == "__main__":
    sys.exit(main())
