"""End-to-end fires per second with two workers, against raw Celery on the same machine.

    .venv/bin/python -m bench.workers [--runs 1000] [--reps 3] [--idle 30] [--no-beat]

Side by side in one run, repetitions interleaved so background load hits every
mode alike:

- ``raw``: two bare Celery workers (``bench/workers/raw_app.py``, prefork,
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

Isolation: database ``tickwise_bench_workers`` (created and migrated here,
kept across invocations), Redis database 3, queues ``bench-workers*``; the
servers come from ``DATABASE_URL``/``REDIS_URL`` or are the embedded ones
(``bench.common``). Every process started here is stopped (its whole process
group), on error too. The whole benchmark is bounded by ``--budget`` seconds.
After the modes, the driver profiles one dispatch and one ``run_execute``
(``bench/workers/profile.py``).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bench_stores, machine, percentile, process_env
from bench.workers.cpu import Processes, machine_busy_seconds, server_cpu_seconds
from bench.workers.modes import DISPATCH_BATCH, QUEUE, RAW_QUEUE, Ledger, Mode, Raw, Sample, state_reset
from bench.workers.profile import profile_report, profile_run

DATABASE = "tickwise_bench_workers"
REDIS_DB = 3
WARMUP = 20


def _start_processes(procs: Processes, *, beat: bool) -> None:
    from scheduler_project import cli

    raw = [sys.executable, "-m", "celery", "-A", "bench.workers.raw_app", "worker", "--loglevel", "INFO",
           "--concurrency", "1", "--pool", "prefork", "--queues", RAW_QUEUE]
    for i in (1, 2):
        procs.start(f"raw{i}", [*raw, "--hostname", f"bench-raw{i}@%h"], ready="ready.")
        procs.start(f"worker{i}", cli.worker_command(f"bench-worker{i}"), ready="ready.")
    if beat:
        procs.start("beat", cli.beat_command(), ready="beat: Starting")


def _route_execute(name: str, args: object, kwargs: object, options: object, task: object = None,
                   **kw: object) -> dict[str, str] | None:
    return {"queue": QUEUE} if name == "runs.execute" else None


# --- the run ----------------------------------------------------------------------

def _measure(mode: Mode, procs: Processes, n: int, timeout: float) -> Sample:
    def dispatcher_cpu() -> float:
        return procs.cpu_seconds([mode.dispatcher]) if mode.dispatcher else time.process_time()

    workers, dispatcher, busy = procs.cpu_seconds(mode.workers), dispatcher_cpu(), machine_busy_seconds()
    database, redis = server_cpu_seconds()
    began = time.monotonic()
    sample = mode.burst(n, timeout)
    sample.seconds = time.monotonic() - began
    sample.worker_cpu_ms = (procs.cpu_seconds(mode.workers) - workers) * 1000 / n
    sample.dispatcher_cpu_ms = (dispatcher_cpu() - dispatcher) * 1000 / n
    database_after, redis_after = server_cpu_seconds()
    sample.database_cpu_ms = (database_after - database) * 1000 / n
    sample.redis_cpu_ms = (redis_after - redis) * 1000 / n
    sample.machine_busy = (machine_busy_seconds() - busy) / (sample.seconds * (os.cpu_count() or 1))
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
        f"concurrency 1); `echo` adapter; {machine('celery', 'django')}; "
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
            f"{_fmt(mode.median(lambda s: percentile(s.latencies_ms, 0.5)))} / "
            f"{_fmt(mode.median(lambda s: percentile(s.latencies_ms, 0.99)))} | "
            f"{_fmt(percentile(mode.idle_ms, 0.5))} / {_fmt(percentile(mode.idle_ms, 0.99))} | "
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
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
    with bench_stores(DATABASE, REDIS_DB, fresh=False, TICKWISE_QUEUE=QUEUE, BENCH_RAW_QUEUE=RAW_QUEUE,
                      TICKWISE_BEAT_MAX_SLEEP="1"):
        return _run(args, deadline, load)


def _run(args: argparse.Namespace, deadline: float, load: tuple[float, float, float]) -> int:
    import runs.services.execute  # noqa: F401  (a broken tree fails here, before any worker starts)
    from scheduler_project.celery import app

    app.conf.task_routes = (_route_execute,)
    state_reset()
    ledger = Ledger(args.runs)
    modes = _modes(args, Raw(), ledger)
    procs = Processes(process_env(), Path(tempfile.mkdtemp(prefix="bench-workers-")))
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
        state_reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
