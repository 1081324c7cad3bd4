"""Beat benchmark: Tickwise's beat against django-celery-beat and celery-redbeat.

    .venv/bin/python -m bench.beat [--quick] [--sizes 1000,10000,100000] [--loops 10]

For each size, the same seeded schedules (random 5-field crons over 20 zones,
~1% due per minute) are loaded into each scheduler's store in turn, and each is
measured on the same machine in the same run: one beat loop with nothing due
and with 1% due (wall time, SQL statements or Redis commands), start-up
(construction + first tick) and memory in a fresh process, and the time from a
schedule edit to the beat's dispatch with a real beat process. Results are
printed as markdown tables; see bench/README.md ("Beat"). ``--quick`` runs
every part once at 1,000 schedules (fewer loops and edits, one minute of
lateness) to check the benchmark end to end; its figures are not for quoting.

Runs against its own database ``tickwise_bench`` (dropped and recreated) and
Redis database 2; starts the embedded servers when DATABASE_URL/REDIS_URL are
unset, and stops those it started.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.beat.stores import DATABASE, REDIS_DB, quiet
from bench.common import ROOT, bench_stores, machine, median, process_env, process_start, processes_stop

MINUTE = timedelta(minutes=1)
FULL = {"sizes": "1000,10000,100000", "loops": 10, "edits": 5, "lateness_minutes": 3}
# Every part once, small: about 3 minutes on 2 cores.
QUICK = {"sizes": "1000", "loops": 5, "edits": 2, "lateness_minutes": 1}
PACKAGES = ("celery", "kombu", "django", "django-celery-beat", "celery-redbeat")  # named in the header


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.beat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"check the benchmark end to end: {QUICK} unless given (otherwise {FULL})")
    parser.add_argument("--sizes", help="comma-separated schedule counts")
    # Ten: a 1% loop at 1,000 schedules fires about ten, so a housekeeping pulse
    # sent during one loop (every scheduler sends them) moves it by half; five
    # loops gave medians that moved by a third between runs.
    parser.add_argument("--loops", type=int, help="loops per median (at least 5)")
    parser.add_argument("--edits", type=int, help="schedule edits timed per scheduler")
    parser.add_argument("--systems", default="tickwise,dcb,redbeat")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--drain-seconds", type=float, default=10.0,
                        help="longest time one django-celery-beat 1%% loop may take (then scaled up)")
    parser.add_argument("--phase-seconds", type=float, default=480.0,
                        help="longest time one scheduler's in-process measurements may take")
    parser.add_argument("--propagation-after", type=float, default=60.0,
                        help="skip the real-beat edit timing when start-up took longer than this (s): "
                             "every django-celery-beat edit reloads all tasks, which takes about as long")
    parser.add_argument("--lateness-minutes", type=int,
                        help="minutes of real-clock firing with a beat and two workers at the largest size "
                             "(Tickwise; 0 skips it)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    args.systems = args.systems.split(",")
    return args


def _phase_lines(command: list[str], env: dict[str, str], limit: float) -> tuple[list[dict], bool]:
    """The JSON lines a phase process printed, and whether it finished within ``limit``."""
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=limit, cwd=ROOT)
    except subprocess.TimeoutExpired as expired:  # the child is killed; keep what it printed
        out = expired.stdout or ""
        return _parse(out.decode() if isinstance(out, bytes) else out), False
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[2:4])} failed:\n{done.stderr[-4000:]}")
    return _parse(done.stdout), True


def _parse(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _loops(lines: list[dict], kind: str) -> list[dict]:
    return [line for line in lines if line["kind"] == kind]


def _due_summary(lines: list[dict]) -> dict:
    """Medians of the 1% loops; a loop cut short by its time limit is scaled up to all it had to send."""
    targets = [line.get("armed", line["due"]) for line in lines]
    scale = [target / line["sent"] if 0 < line["sent"] < target else 1 for line, target in zip(lines, targets)]
    return {"ms": median([line["seconds"] * k for line, k in zip(lines, scale)]) * 1000,
            "ops": median([line["ops"] * k for line, k in zip(lines, scale)]), "loops": len(lines),
            "due": median([line["due"] for line in lines]), "armed": median(targets),
            "sent": median([line["sent"] for line in lines]),
            "cut_short": sum(1 for line, target in zip(lines, targets) if line["sent"] < target),
            "ms_per_due": median([line["seconds"] / max(1, line["sent"]) for line in lines]) * 1000}


class SizeRun:
    """All measurements at one size; phases run one scheduler at a time."""

    def __init__(self, size: int, args: argparse.Namespace, env: dict[str, str], logs: Path) -> None:
        from bench.beat.celeryapp import app
        from bench.beat.data import specs_generate

        self.size, self.args, self.env, self.logs, self.app = size, args, env, logs, app
        self.specs = specs_generate(size, seed=args.seed)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        # Schedules are planned from half an hour ahead: nothing is due on the real
        # clock while the phase runs, except what the benchmark makes due.
        self.base = now + 31 * MINUTE
        self.due_sets: list[list[str]] = []
        self.due_file = logs / f"due-{size}.json"
        self.results: dict[str, dict] = {}

    def run(self) -> dict[str, dict]:
        from bench.beat.data import (
            dcb_load,
            dcb_unload,
            redbeat_load,
            redbeat_pulses_as_restarted,
            tickwise_load,
            tickwise_unload,
        )
        from bench.beat.stores import redis_flush
        from bench.beat.tickwise import tickwise_pulses_as_restarted

        def load_tickwise() -> None:
            tickwise_load(self.specs, after=self.base)
            tickwise_pulses_as_restarted(now=datetime.now(UTC))

        def load_dcb() -> None:
            dcb_load(self.specs, last_run_at=self.base)
            tickwise_pulses_as_restarted(now=datetime.now(UTC))  # the same pulse rows

        def load_redbeat() -> None:
            redbeat_load(self.app, self.specs, last_run_at=self.base)
            redbeat_pulses_as_restarted(self.app, now=datetime.now(UTC))

        redis_flush()
        tickwise_unload()
        dcb_unload()
        loads = {"tickwise": load_tickwise,
                 "dcb": load_dcb,
                 "redbeat": load_redbeat}
        for system, load in loads.items():
            # The Tickwise phase always runs: it decides which schedules are due in each loop.
            if system in self.args.systems or system == "tickwise":
                started = time.monotonic()
                load()
                self.results[system] = self.measure(system)
                if system == "dcb":
                    dcb_unload()  # its tasks would otherwise ride along in Tickwise's housekeeping beat
                print(f"  {system}: {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
        if "tickwise" not in self.args.systems:
            del self.results["tickwise"]
        return self.results

    def measure(self, system: str) -> dict:
        command = [sys.executable, "-m", "bench.beat.phase", system, "--loops", str(self.args.loops),
                   "--base", self.base.isoformat(), "--drain-seconds", str(self.args.drain_seconds)]
        if system != "tickwise":
            command += ["--due", str(self.due_file)]
        lines, finished = _phase_lines(command, self.env, self.args.phase_seconds)
        if system == "tickwise":
            self.due_sets = _loops(lines, "due_sets")[0]["sets"]
            self.due_file.write_text(json.dumps(self.due_sets))
        result = self._summaries(lines)
        result["raw"] = [line for line in lines if line["kind"] != "due_sets"]
        if not finished:
            result["cut_at_s"] = self.args.phase_seconds
        if "startup" not in result:
            result["startup"] = {"over_ms": self.args.phase_seconds * 1000}
        elif result["startup"]["ms"] > self.args.propagation_after * 1000:
            result["propagation"] = {"skipped": "start-up took longer than --propagation-after"}
        else:
            result["propagation"] = self._propagation(system)
        if explain := _loops(lines, "explain"):
            result["explain"] = explain[0]["plans"]
        return result

    @staticmethod
    def _summaries(lines: list[dict]) -> dict:
        result: dict = {}
        for line in _loops(lines, "startup"):
            result["startup"] = {"ms": line["seconds"] * 1000, "ops": line["ops"], "rss_mib": line["rss_mib"],
                                 "peak_mib": line["peak_mib"]}
        if idle := _loops(lines, "idle"):
            result["idle"] = {"ms": median([x["seconds"] for x in idle]) * 1000,
                              "ops": median([x["ops"] for x in idle]), "loops": len(idle)}
        if due := _loops(lines, "due"):
            result["due"] = _due_summary(due)
        return result

    # --- change propagation with a real beat process ---------------------------

    def _edit_names(self) -> list[str]:
        fired = {name for names in self.due_sets for name in names}
        free = [spec.name for spec in reversed(self.specs) if spec.name not in fired]
        return free[: self.args.edits]

    def _propagation(self, system: str) -> dict:
        from bench.beat.propagation import propagation_measure
        from bench.beat.stores import queue_purge

        edit, matches, command = _propagation_parts(system, self.app)
        queue_purge()
        started = time.perf_counter()
        proc = process_start(command, env=self.env, log=self.logs / f"beat-{system}-{self.size}.log",
                             ready="beat: Starting")
        try:
            result = propagation_measure(edit, matches, self._edit_names(), started=started,
                                         **PROPAGATION_LIMITS[system])
        finally:
            processes_stop([proc])
        return {"ms": [s * 1000 for s in result.seconds], "missed": result.missed,
                "ready_ms": None if result.ready_seconds is None else round(result.ready_seconds * 1000)}


# Seconds: wait for the beat's first message, per edit, and for all edits. A
# django-celery-beat edit reloads every task, so its limits are the widest.
PROPAGATION_LIMITS = {
    "tickwise": {"ready_timeout": 30, "timeout": 30, "budget": 60},
    "dcb": {"ready_timeout": 240, "timeout": 120, "budget": 60},
    "redbeat": {"ready_timeout": 30, "timeout": 30, "budget": 60},
}


def _propagation_parts(system: str, app):
    """(edit, message matcher, beat command) for one scheduler."""
    from bench.beat.data import TASK
    from bench.beat.incumbents import dcb_edit_due_now, redbeat_edit_due_now
    from bench.beat.propagation import message_args, message_task
    from bench.beat.tickwise import tickwise_edit_due_now, tickwise_run_schedule
    from scheduler_project.cli import beat_command

    def now() -> datetime:
        return datetime.now(UTC)

    def incumbent_matches(message: dict, name: str) -> bool:
        return message_task(message) == TASK and name in message.get("headers", {}).get("kwargsrepr", "")

    def tickwise_matches(message: dict, name: str) -> bool:
        return message_task(message) == "runs.execute" and tickwise_run_schedule(message_args(message)[0]) == name

    incumbent = [sys.executable, "-m", "celery", "-A", "bench.beat.celeryapp", "beat", "--loglevel", "INFO", "-S"]
    if system == "tickwise":
        return (lambda name: tickwise_edit_due_now(name, now=now())), tickwise_matches, beat_command()
    if system == "dcb":
        return ((lambda name: dcb_edit_due_now(name, now=now())), incumbent_matches,
                incumbent + ["django_celery_beat.schedulers:DatabaseScheduler"])
    return ((lambda name: redbeat_edit_due_now(app, name, now=now())), incumbent_matches,
            incumbent + ["redbeat.RedBeatScheduler"])


def _lateness(args: argparse.Namespace, env: dict[str, str], logs: Path) -> dict:
    """Real-clock lateness at the last size measured (its schedules are still loaded)."""
    from dataclasses import asdict

    from bench.beat.lateness import lateness_measure

    print("lateness ...", file=sys.stderr, flush=True)
    result = lateness_measure(env, logs, minutes=args.lateness_minutes)

    def pair(values) -> str:
        return "n/a" if values is None else f"{values[0]:,.0f} / {values[1]:,.0f}"

    minutes = f"{result.minutes} minute{'s' if result.minutes != 1 else ''}"
    print(f"#### Lateness, {args.sizes[-1]:,} schedules, a beat and two workers, {minutes}\n\n"
          f"| ticks | per minute | p50 / p99 ms: dispatch | publish | start | not started by the end | states |\n"
          f"|---|---|---|---|---|---|---|\n| {result.ticks:,} | {result.ticks / result.minutes:,.0f} "
          f"| {pair(result.dispatch_ms)} | {pair(result.publish_ms)} | {pair(result.start_ms)} "
          f"| {result.not_started:,} | {result.states} |\n", flush=True)
    return asdict(result)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    with bench_stores(DATABASE, REDIS_DB, fresh=True, TICKWISE_LOG_LEVEL="WARNING"):
        quiet()
        _run(args, process_env(), Path(tempfile.mkdtemp(prefix="tickwise-bench-beat-")))
    return 0


def _run(args: argparse.Namespace, env: dict[str, str], logs: Path) -> None:
    from bench.beat.report import size_table

    print(f"# Beat benchmark\n\nmachine: {machine(*PACKAGES)}  \nsizes: {args.sizes}, loops: {args.loops}, "
          f"edits: {args.edits}, seed: {args.seed}{' (--quick)' if args.quick else ''}  \nbeat logs: {logs}\n",
          flush=True)
    everything = {}
    for size in args.sizes:
        print(f"size {size:,} ...", file=sys.stderr, flush=True)
        everything[size] = SizeRun(size, args, env, logs).run()
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(size_table(size, everything[size]) + f"  \nload average after this size: {load}\n", flush=True)
    if args.lateness_minutes and "tickwise" in args.systems:
        everything["lateness"] = _lateness(args, env, logs)
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
