"""Beat benchmark: Tickwise's beat against django-celery-beat and celery-redbeat.

    .venv/bin/python bench/bench_beat.py [--sizes 1000,10000,100000] [--loops 5]

For each size, the same seeded schedules (random 5-field crons over 20 zones,
~1% due per minute) are loaded into each scheduler's store in turn, and each is
measured on the same machine in the same run: one beat loop with nothing due
and with 1% due (wall time, SQL statements or Redis commands), start-up
(construction + first tick) and memory in a fresh process, and the time from a
schedule edit to the beat's dispatch with a real beat process. Results are
printed as markdown tables; see bench/README.md ("Beat").

Runs against its own database ``tickwise_bench`` (dropped and recreated) and
Redis database 2; starts the embedded servers when DATABASE_URL/REDIS_URL are
unset, and stops those it started.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from beat_setup import BENCH_DIR, bench_urls, database_recreate, django_start, process_env  # noqa: E402

MINUTE = timedelta(minutes=1)


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated schedule counts")
    parser.add_argument("--loops", type=int, default=5, help="loops per median (at least 5 recommended)")
    parser.add_argument("--edits", type=int, default=5, help="schedule edits timed per scheduler")
    parser.add_argument("--systems", default="tickwise,dcb,redbeat")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--drain-seconds", type=float, default=20.0,
                        help="longest time one django-celery-beat 1%% loop may take")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    args.systems = args.systems.split(",")
    return args


def _quiet() -> None:
    # Each incumbent logs every send at INFO; thousands of lines would drown the tables.
    for name in ("celery", "django_celery_beat", "redbeat", "tickwise"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _summary(samples, **extra) -> dict:
    from beat_measure import summarize

    summary = summarize(samples)
    return {"ms": summary.ms, "ops": summary.queries + summary.commands, "loops": summary.count, **extra}


def _startup(system: str, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, str(BENCH_DIR / "beat_startup.py"), system], env=env,
                         capture_output=True, text=True, timeout=600, cwd=BENCH_DIR.parent)
    if out.returncode:
        raise RuntimeError(f"start-up of {system} failed:\n{out.stderr[-3000:]}")
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    return {"ms": raw["seconds"] * 1000, "ops": raw["queries"] + raw["commands"],
            "rss_mib": raw["rss_delta_kib"] / 1024, "peak_mib": raw["peak_delta_kib"] / 1024}


class SizeRun:
    """All measurements at one size; phases run one scheduler at a time."""

    def __init__(self, size: int, args: argparse.Namespace, env: dict[str, str], logs: Path) -> None:
        from beat_celeryapp import app
        from beat_data import specs_generate

        self.size, self.args, self.env, self.logs, self.app = size, args, env, logs, app
        self.specs = specs_generate(size, seed=args.seed)
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        # Schedules are planned from half an hour ahead: nothing is due on the real
        # clock while the phase runs, except what the benchmark makes due.
        self.base = now + 31 * MINUTE
        self.due_sets: list[list[str]] = []
        self.results: dict[str, dict] = {}

    def run(self) -> dict[str, dict]:
        from beat_data import dcb_unload, tickwise_unload
        from beat_setup import redis_flush

        redis_flush()
        tickwise_unload()
        dcb_unload()
        for system in ("tickwise", "dcb", "redbeat"):
            if system in self.args.systems or (system == "tickwise" and not self.due_sets):
                started = time.monotonic()
                getattr(self, system)()
                print(f"  {system}: {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
        return self.results

    # --- Tickwise ---------------------------------------------------------------

    def tickwise(self) -> None:
        from beat_data import tickwise_load
        from beat_measure import measure
        from beat_setup import queue_purge
        from beat_tickwise import tickwise_fired_names, tickwise_loop, tickwise_scheduler

        tickwise_load(self.specs, after=self.base)
        startup = _startup("tickwise", self.env)
        scheduler, idle, due = tickwise_scheduler(self.app), [], []
        for k in range(1, self.args.loops + 1):
            minute = self.base + k * MINUTE
            due.append(measure(lambda: tickwise_loop(scheduler, now=minute + timedelta(seconds=0.25))))
            self.due_sets.append(tickwise_fired_names(tick_at=minute))
            idle.append(measure(lambda: tickwise_loop(scheduler, now=minute + timedelta(seconds=30))))
            queue_purge()
        if "tickwise" not in self.args.systems:
            return
        self.results["tickwise"] = {"idle": _summary(idle), "due": self._due_summary(due, [s.result for s in due]),
                                    "startup": startup, "propagation": self._propagation("tickwise")}

    def _due_summary(self, samples, sent: list[int]) -> dict:
        """Medians of the 1% loops; a loop cut short by its time limit is scaled up to all it had due."""
        import statistics

        due = [len(names) for names in self.due_sets]
        full = [sample.seconds * (d / n if 0 < n < d else 1) for sample, d, n in zip(samples, due, sent)]
        summary = _summary(samples, due=statistics.median(due), sent=statistics.median(sent),
                           cut_short=sum(1 for d, n in zip(due, sent) if n < d))
        summary["ms"] = statistics.median(full) * 1000
        summary["ms_per_due"] = statistics.median(s.seconds / max(1, n) for s, n in zip(samples, sent)) * 1000
        return summary

    # --- django-celery-beat ----------------------------------------------------

    def dcb(self) -> None:
        from beat_data import dcb_load, dcb_unload
        from beat_incumbents import dcb_arm, dcb_drain, dcb_scheduler
        from beat_measure import measure
        from beat_setup import queue_purge

        dcb_load(self.specs, last_run_at=self.base)
        startup = _startup("dcb", self.env)
        scheduler = dcb_scheduler(self.app)
        scheduler.tick()  # the first tick fills the heap: that is start-up, measured above
        idle = [measure(scheduler.tick) for _ in range(self.args.loops)]
        due, sent = [], []
        for names in self.due_sets:
            dcb_arm(scheduler, names, now=datetime.now(timezone.utc))
            sample = measure(lambda: dcb_drain(scheduler, limit=len(names) + 1, seconds=self.args.drain_seconds))
            due.append(sample)
            sent.append(sample.result["sent"])
            queue_purge()
        propagation = self._propagation("dcb")
        dcb_unload()
        self.results["dcb"] = {"idle": _summary(idle), "due": self._due_summary(due, sent),
                               "startup": startup, "propagation": propagation}

    # --- celery-redbeat ----------------------------------------------------------

    def redbeat(self) -> None:
        from beat_data import redbeat_load
        from beat_incumbents import redbeat_arm, redbeat_scheduler
        from beat_measure import CommandCounter, measure
        from beat_setup import queue_purge

        redbeat_load(self.app, self.specs, last_run_at=self.base)
        startup = _startup("redbeat", self.env)
        counter = CommandCounter()
        scheduler = redbeat_scheduler(self.app, client=counter.client(self.app.conf.redbeat_redis_url))
        scheduler.tick()
        idle = [measure(scheduler.tick, counter=counter) for _ in range(self.args.loops)]
        due = []
        for names in self.due_sets:
            redbeat_arm(self.app, names, now=datetime.now(timezone.utc))
            due.append(measure(scheduler.tick, counter=counter))
            queue_purge()
        scheduler.lock.release()  # the beat process below takes the lock
        self.results["redbeat"] = {"idle": _summary(idle),
                                   "due": self._due_summary(due, [len(n) for n in self.due_sets]),
                                   "startup": startup, "propagation": self._propagation("redbeat")}

    # --- change propagation with a real beat process ---------------------------

    def _edit_names(self) -> list[str]:
        fired = {name for names in self.due_sets for name in names}
        free = [spec.name for spec in reversed(self.specs) if spec.name not in fired]
        return free[: self.args.edits]

    def _propagation(self, system: str) -> dict:
        from beat_propagation import beat_start, beat_stop, propagation_measure
        from beat_setup import queue_purge

        edit, matches, command = _propagation_parts(system, self.app)
        queue_purge()
        started = time.perf_counter()
        proc = beat_start(command, self.env, self.logs / f"beat-{system}-{self.size}.log")
        try:
            result = propagation_measure(edit, matches, self._edit_names(), started=started,
                                         **PROPAGATION_LIMITS[system])
        finally:
            beat_stop(proc)
        return {"ms": [s * 1000 for s in result.seconds], "missed": result.missed,
                "ready_ms": None if result.ready_seconds is None else round(result.ready_seconds * 1000)}


# Seconds: wait for the beat's first message, per edit, and for all edits. A
# django-celery-beat edit reloads every task, so its limits are the widest.
PROPAGATION_LIMITS = {
    "tickwise": {"ready_timeout": 30, "timeout": 30, "budget": 60},
    "dcb": {"ready_timeout": 300, "timeout": 150, "budget": 120},
    "redbeat": {"ready_timeout": 3, "timeout": 30, "budget": 60},
}


def _propagation_parts(system: str, app):
    """(edit, message matcher, beat command) for one scheduler."""
    from beat_data import TASK
    from beat_incumbents import dcb_edit_due_now, redbeat_edit_due_now
    from beat_propagation import message_args, message_task
    from beat_tickwise import tickwise_edit_due_now, tickwise_run_schedule

    from scheduler_project.cli import beat_command

    def now() -> datetime:
        return datetime.now(timezone.utc)

    def incumbent_matches(message: dict, name: str) -> bool:
        return message_task(message) == TASK and name in message.get("headers", {}).get("kwargsrepr", "")

    def tickwise_matches(message: dict, name: str) -> bool:
        return message_task(message) == "runs.execute" and tickwise_run_schedule(message_args(message)[0]) == name

    incumbent = [sys.executable, "-m", "celery", "-A", "beat_celeryapp", "beat", "--loglevel", "INFO", "-S"]
    if system == "tickwise":
        return (lambda name: tickwise_edit_due_now(name, now=now())), tickwise_matches, beat_command()
    if system == "dcb":
        return ((lambda name: dcb_edit_due_now(name, now=now())), incumbent_matches,
                incumbent + ["django_celery_beat.schedulers:DatabaseScheduler"])
    return ((lambda name: redbeat_edit_due_now(app, name, now=now())), incumbent_matches,
            incumbent + ["redbeat.RedBeatScheduler"])


def _machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    urls = bench_urls()
    try:
        database_recreate(urls)
        django_start(urls)
        _quiet()
        from beat_report import size_table

        env, logs = process_env(urls), Path(tempfile.mkdtemp(prefix="tickwise-bench-beat-"))
        print(f"# Beat benchmark\n\nmachine: {_machine()}  \nsizes: {args.sizes}, loops: {args.loops}, "
              f"seed: {args.seed}  \nbeat logs: {logs}\n", flush=True)
        everything = {}
        for size in args.sizes:
            print(f"size {size:,} ...", file=sys.stderr, flush=True)
            everything[size] = SizeRun(size, args, env, logs).run()
            print(size_table(size, everything[size]) + "\n", flush=True)
        if args.json:
            args.json.write_text(json.dumps(everything, indent=2, default=str))
        return 0
    finally:
        if urls.started:
            from scheduler_project.embedded import stop_servers

            stop_servers(urls.started)


if __name__ == "__main__":
    sys.exit(main())
