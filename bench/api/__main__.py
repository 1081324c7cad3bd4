"""The REST API against a bare Django view doing the same work, side by side in one gunicorn.

    .venv/bin/python -m bench.api [--rounds 5] [--seconds 3] [--requests 300] [--connections 4] [--schedules 200]

One gunicorn (2 sync workers, as ``./tickwise run`` starts the web process,
without the access log) serves the project's URLs and the bare views of
``bench/api/bare.py`` (settings ``bench.api.settings``) on a fresh database
``tickwise_bench_api``, Redis database 4, queue ``bench-api`` (no worker
consumes it: every published run stays there, so the benchmark can count them).
One member's key (role admin), one agent, ``--schedules`` daily crons.

Three endpoints, each through the API (``/api/v1/…``) and the bare view
(``/bare/…``), which answer the same JSON (checked first):

- ``GET …/schedules/{schedule}``: always the same schedule;
- ``GET …/schedules?limit=50``: the first page of 50;
- ``POST …/schedules/{schedule}/trigger`` with ``{}``: cycling through the
  schedules; each answer is a 202 whose run was committed and published first.

Each round measures every endpoint, API and bare in alternating order:
throughput with ``wrk`` (``--connections`` connections for ``--seconds``; Python
threads when ``wrk`` is not installed), then latency with one Python client
sending ``--requests`` requests one at a time (fewer if ``--seconds`` run out
first). The table gives medians over the rounds, after a warm-up; the ratio
is the median of each round's API ÷ bare, measured back to back. The ledger
is then checked against the answers.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.api.fixture import Fixture, fixture_create
from bench.api.load import Burst, Sequential, Target, python_burst, sequential, wrk_available, wrk_burst
from bench.common import bench_stores, machine, median, percentile, process_env, queues_purge, redis_bench
from bench.workers.cpu import Processes

DATABASE = "tickwise_bench_api"
REDIS_DB = 4
QUEUE = "bench-api"
SETTINGS = "bench.api.settings"
WARMUP_SECONDS = 2.0
WARMUP_REQUESTS = 20
SIDES = ("API", "bare")
DRAIN_TIMEOUT = 30.0
IDLE_CPU_SECONDS = 0.02  # gunicorn's CPU over 0.3 s when it serves nothing (two clock ticks)


@dataclass
class Endpoint:
    title: str
    targets: dict[str, Target]  # by side
    bursts: dict[str, list[Burst]] = field(default_factory=lambda: {side: [] for side in SIDES})
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    latencies: dict[str, list[Sequential]] = field(default_factory=lambda: {side: [] for side in SIDES})
    statements: dict[str, int] = field(default_factory=dict)

    def rps(self, side: str) -> float:
        return median(b.rps for b in self.bursts[side])

    def ratio(self) -> float:
        """The median of each round's API ÷ bare: the two run back to back, so background load hits both alike."""
        return median(api.rps / bare.rps for api, bare in zip(self.bursts["API"], self.bursts["bare"]))

    def latency(self, side: str, fraction: float) -> float:
        return median(percentile(s.latencies_ms, fraction) for s in self.latencies[side])


def _endpoints(fixture: Fixture) -> list[Endpoint]:
    agent, first = fixture.agent_id, fixture.schedule_ids[0]

    def both(suffix: str, method: str = "GET", status: int = 200, body: bytes | None = None,
             schedules: tuple[int, ...] = (first,)) -> dict[str, Target]:
        return {side: Target(method, tuple(f"{prefix}/agents/{agent}/schedules{suffix.format(s)}"
                                           for s in schedules), status, body)
                for side, prefix in zip(SIDES, ("/api/v1", "/bare"))}
    return [
        Endpoint("`GET …/schedules/{schedule}`", both("/{}")),
        Endpoint("`GET …/schedules` (50 per page)", both("?limit=50")),
        Endpoint("`POST …/schedules/{schedule}/trigger`", both("/{}/trigger", "POST", 202, b"{}",
                                                               fixture.schedule_ids)),
    ]


# --- the server and what it answers -----------------------------------------------------

def _same_json(base: str, fixture: Fixture, endpoints: list[Endpoint]) -> None:
    """Refuse to measure unless the bare views answer what the API answers (a trigger: the same fields)."""
    import httpx

    with httpx.Client(base_url=base, headers=fixture.headers, timeout=30) as client:
        for endpoint in endpoints:
            api, bare = (endpoint.targets[side] for side in SIDES)
            answers = [client.request(t.method, t.path(0), content=t.body, headers=_typed(t)) for t in (api, bare)]
            for target, answer in zip((api, bare), answers):
                if answer.status_code != target.status:
                    raise SystemExit(f"{target.method} {target.path(0)}: {answer.status_code} {answer.text[:500]}")
            same = _shape if api.method == "POST" else (lambda body: body)
            if same(answers[0].json()) != same(answers[1].json()):
                raise SystemExit(f"the bare view of {endpoint.title} does not answer the API's JSON:\n"
                                 f"API  {answers[0].text[:2000]}\nbare {answers[1].text[:2000]}")


def _shape(body: dict) -> list[tuple[str, str]]:
    return [(key, type(value).__name__) for key, value in body.items()]


def _typed(target: Target) -> dict[str, str]:
    return {"Content-Type": "application/json"} if target.body is not None else {}


def _count_statements(fixture: Fixture, endpoints: list[Endpoint]) -> None:
    """SQL statements per request as Django's query log shows them, in this process (the second request)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(SERVER_NAME="127.0.0.1", headers=fixture.headers)
    for endpoint in endpoints:
        for side, target in endpoint.targets.items():
            for i in range(2):
                with CaptureQueriesContext(connection) as queries:
                    response = client.generic(target.method, target.path(i), data=target.body or b"",
                                              content_type="application/json")
                assert response.status_code == target.status, response.content
            endpoint.statements[side] = len(queries)


# --- measuring --------------------------------------------------------------------------

def _measure(args: argparse.Namespace, base: str, fixture: Fixture, endpoints: list[Endpoint],
             procs: Processes, ledger: Ledger) -> None:
    burst = wrk_burst if args.wrk else python_burst
    for endpoint in endpoints:
        for target in endpoint.targets.values():
            burst(base, target, token=fixture.token, seconds=WARMUP_SECONDS, connections=args.connections)
            _drain(procs, ledger)
            sequential(base, target, token=fixture.token, count=WARMUP_REQUESTS)
    for round_ in range(args.rounds):
        for endpoint in endpoints:
            for side in SIDES if round_ % 2 == 0 else SIDES[::-1]:
                target = endpoint.targets[side]
                before, cpu = ledger.runs(), procs.cpu_seconds(["gunicorn"])
                sample = burst(base, target, token=fixture.token, seconds=args.seconds, connections=args.connections)
                endpoint.cpu_ms[side].append((procs.cpu_seconds(["gunicorn"]) - cpu) * 1000 / sample.responses)
                endpoint.bursts[side].append(sample)
                _drain(procs, ledger)
                if target.method == "POST":
                    ledger.after_burst(sample, ledger.runs() - before, args.connections)
                before = ledger.runs()
                latency = sequential(base, target, token=fixture.token, count=args.requests, seconds=args.seconds,
                                     start=round_)
                endpoint.latencies[side].append(latency)
                if target.method == "POST":
                    ledger.after_sequential(latency, ledger.runs() - before)
                print(f"round {round_ + 1} {side:4} {endpoint.title:40} {sample.rps:7.1f} req/s "
                      f"(unexpected {sample.unexpected}), one at a time p50 "
                      f"{percentile(latency.latencies_ms, 0.5):.1f} ms", flush=True)


def _drain(procs: Processes, ledger: Ledger) -> None:
    """Wait for the requests still in flight when the load generator stopped (queued ones included).

    gunicorn serves what it accepted even after the client left, so a
    trigger's run may be committed after ``wrk`` returned: counting the
    ledger, or timing the next phase, before then would be wrong.
    """
    deadline = time.monotonic() + DRAIN_TIMEOUT
    cpu, runs = procs.cpu_seconds(["gunicorn"]), ledger.runs()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        cpu_now, runs_now = procs.cpu_seconds(["gunicorn"]), ledger.runs()
        if cpu_now - cpu < IDLE_CPU_SECONDS and runs_now == runs:
            return
        cpu, runs = cpu_now, runs_now
    raise RuntimeError(f"gunicorn still busy {DRAIN_TIMEOUT:g} s after the load stopped")


class Ledger:
    """What the triggers left in the ledger and the queue, against the 202s that were answered."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.sequential_runs = self.sequential_answers = self.burst_runs = self.burst_answers = 0

    @staticmethod
    def runs() -> int:
        from runs.models import Run

        return Run.objects.count()

    def after_burst(self, sample: Burst, created: int, connections: int) -> None:
        # wrk stops with up to ``connections`` requests in flight: the server still commits their runs.
        self.burst_runs += created
        self.burst_answers += sample.responses
        if sample.unexpected or not sample.responses <= created <= sample.responses + connections:
            self.problems.append(f"burst: {sample.responses} answers ({sample.unexpected} unexpected), "
                                 f"{created} runs")

    def after_sequential(self, sample: Sequential, created: int) -> None:
        from runs.models import Run

        self.sequential_runs += created
        self.sequential_answers += len(sample.answered)
        if created != len(sample.answered):
            self.problems.append(f"one at a time: {len(sample.answered)} answers, {created} runs")
        published = dict(Run.objects.filter(id__in=[i for i, _ in sample.answered])
                         .values_list("id", "published_at"))
        late = [i for i, arrived in sample.answered if not _before(published.get(i), arrived)]
        if late:
            self.problems.append(f"{len(late)} runs not published before their answer arrived, e.g. {late[:5]}")

    def summary(self) -> str:
        from runs.models import Run

        total, unpublished = Run.objects.count(), Run.objects.filter(published_at__isnull=True).count()
        client = redis_bench()
        queued = sum(client.llen(key) for key in [QUEUE, *client.keys(f"{QUEUE}\x06*")])
        if unpublished or queued != total:
            self.problems.append(f"{total} runs, {unpublished} unpublished, {queued} messages queued")
        verdict = "every check passed" if not self.problems else "FAILED: " + "; ".join(self.problems)
        return (f"Triggers: one at a time, {self.sequential_answers} answers 202 and {self.sequential_runs} new "
                f"runs, each published (`published_at` set) before its answer arrived; under load, "
                f"{self.burst_answers} answers counted by the load generator and {self.burst_runs} new runs (up to "
                f"--connections more: requests in flight when it stopped); in all {total} runs, {unpublished} "
                f"unpublished, {queued} messages in the queue: {verdict}.")


def _before(published: datetime | None, arrived: datetime) -> bool:
    return published is not None and published <= arrived


# --- the report -------------------------------------------------------------------------

def _ms(value: float) -> str:
    return "–" if value != value else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _pair(endpoint: Endpoint, value: Callable[[str], float]) -> str:
    return " / ".join(_ms(value(side)) for side in SIDES)


def _report(args: argparse.Namespace, endpoints: list[Endpoint], load: tuple[float, ...]) -> str:
    tool = f"`wrk` (1 thread, {args.connections} connections)" if args.wrk else \
        f"Python threads ({args.connections} connections; no `wrk`)"
    sent = [len(s.latencies_ms) for e in endpoints for side in SIDES for s in e.latencies[side]]
    lines = [
        f"{args.rounds} rounds, medians; throughput {args.seconds:g} s per round with {tool}; latency "
        f"{min(sent)} to {max(sent)} requests one at a time (httpx); gunicorn 2 sync workers; "
        f"{args.schedules} schedules; "
        f"{machine('django', 'django-ninja', 'pydantic', 'gunicorn')}; load average {load[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after",
        "",
        "| endpoint | req/s API | req/s bare | API ÷ bare (median of rounds) | each round API / bare "
        "| latency p50 / p99 ms API | bare | under load p50 / p99 ms API | bare "
        "| gunicorn CPU ms per request API / bare | SQL statements API / bare |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in endpoints:
        rounds = "; ".join(" / ".join(f"{e.bursts[side][i].rps:.0f}" for side in SIDES)
                           for i in range(len(e.bursts["API"])))
        lines.append(
            f"| {e.title} | {e.rps('API'):.0f} | {e.rps('bare'):.0f} | {e.ratio():.2f} | {rounds} "
            f"| {_ms(e.latency('API', 0.5))} / {_ms(e.latency('API', 0.99))} "
            f"| {_ms(e.latency('bare', 0.5))} / {_ms(e.latency('bare', 0.99))} "
            f"| {_ms(median(b.p50_ms for b in e.bursts['API']))} / {_ms(median(b.p99_ms for b in e.bursts['API']))} "
            f"| {_ms(median(b.p50_ms for b in e.bursts['bare']))} / "
            f"{_ms(median(b.p99_ms for b in e.bursts['bare']))} "
            f"| {_pair(e, lambda side: median(e.cpu_ms[side]))} "
            f"| {e.statements.get('API', '?')} / {e.statements.get('bare', '?')} |")
    worst = min(e.ratio() for e in endpoints)
    lines += ["", f"Bar (the API at least half the bare view's throughput on each): "
                  f"{'met' if worst >= 0.5 else 'NOT met'}, lowest ratio {worst:.2f}.", ""]
    return "\n".join(lines)


# --- the command ------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds (medians reported)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="seconds per endpoint and side for throughput, and at most for latency")
    parser.add_argument("--requests", type=int, default=300,
                        help="latency: requests one at a time per round (fewer when --seconds run out first)")
    parser.add_argument("--connections", type=int, default=4, help="throughput: concurrent connections")
    parser.add_argument("--schedules", type=int, default=200, help="schedules of the agent (at least 51)")
    parser.add_argument("--no-wrk", dest="wrk", action="store_false", help="Python threads even if wrk is there")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.schedules < 51 or min(args.rounds, args.requests, args.connections) < 1 or args.seconds <= 0:
        raise SystemExit("--schedules must be at least 51 (a full page and a next one); --rounds, --requests, "
                         "--connections and --seconds must be positive")
    args.wrk = args.wrk and wrk_available()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    load, began = os.getloadavg(), time.monotonic()
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS  # this process and gunicorn's: the bare views' URLs too
    with bench_stores(DATABASE, REDIS_DB, fresh=True, TICKWISE_QUEUE=QUEUE):
        return _run(args, load, began)


def _run(args: argparse.Namespace, load: tuple[float, ...], began: float) -> int:
    queues_purge(redis_bench(), QUEUE)
    fixture = fixture_create(schedules=args.schedules)
    endpoints = _endpoints(fixture)
    _count_statements(fixture, endpoints)
    procs, ledger = Processes(process_env(), Path(tempfile.mkdtemp(prefix="bench-api-"))), Ledger()
    try:
        base = procs.gunicorn()
        _same_json(base, fixture, endpoints)
        _measure(args, base, fixture, endpoints, procs, ledger)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        print(f"server log: {procs.logs}", flush=True)
    print(_report(args, endpoints, load), flush=True)
    print(ledger.summary(), flush=True)
    print(f"{time.monotonic() - began:.0f} s in all", flush=True)
    queues_purge(redis_bench(), QUEUE)
    return 0 if not ledger.problems else 1


if __name__ == "__main__":
    sys.exit(main())
