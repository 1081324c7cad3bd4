"""Webhook ingest against a bare Django insert, duplicates with and without the Redis fast path, and
event → run started latency, in one run.

    .venv/bin/python -m bench.events [--rounds 3] [--seconds 3] [--connections 8] [--latency-seconds 10]

One gunicorn (2 sync workers) serves the project's URLs and the bare view of
``bench/events/bare.py`` (settings ``bench.events.settings``) on a fresh
database ``tickwise_bench_events``, Redis database 5, queue ``bench-events``;
a second one, identical but with ``TICKWISE_EVENTS_REDIS_URL`` empty, serves
the duplicate flood without the fast path. One Standard Webhooks source,
its secret in ``BENCH_EVENTS_SECRET``, its rate limit set out of reach (the
Lua bucket still runs on every delivery).

1. Ingest: ``wrk`` (``--connections``, ``--seconds``) posts distinct signed
   deliveries to ``/api/v1/hooks/bench`` (verify, fast-path check, rate
   bucket, ``INSERT … ON CONFLICT``, routing message, 202) and the same
   deliveries to ``/bare/hooks/bench`` (parse and insert the same row), in
   alternating order per round. Events accepted per second = rows inserted ÷
   the burst's duration; the ratio is the median of each round's pair.
2. Duplicates: one stored delivery posted again and again, with the fast path
   (answered from Redis) and without (the database's constraint answers);
   requests per second, and the SQL statements one such request runs (Django's
   query log, in this process).
3. Latency: two Celery workers, an ``echo`` agent subscribed to the events'
   type; deliveries paced at 10 and 100 a second for ``--latency-seconds``;
   for each event the time from ``received_at`` to its run's ``started_at``.
"""
from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bench_stores, machine, median, process_env, queues_purge, redis_bench
from bench.events.load import Burst, Delivery, deliveries_sign, latency_summary, paced_send, wrk_burst
from bench.workers.cpu import Processes

DATABASE = "tickwise_bench_events"
REDIS_DB = 5
QUEUE = "bench-events"
SETTINGS = "bench.events.settings"
SECRET_ENV = "BENCH_EVENTS_SECRET"
KEY = base64.b64encode(b"bench-events-key-0123456789abcdef").decode()
SLUG, LATENCY_TYPE = "bench", "bench.latency"
PER_BURST = 30_000  # more signed deliveries than a burst sends: each is new
SIDES = ("ingest", "bare")


def _fixture() -> None:
    from events.models import WebhookSource

    WebhookSource.objects.create(slug=SLUG, kind="standard", secrets=[{"env": SECRET_ENV, "retire_at": None}],
                                 rate_per_minute=1_000_000_000)


def _rows() -> int:
    from events.models import InboundEvent

    return InboundEvent.objects.count()


def _statements(delivery: Delivery, *, fast_path: bool) -> int:
    """SQL statements one request for ``delivery`` runs, from Django's query log in this process."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    redis_url = settings.TICKWISE["EVENTS_REDIS_URL"] if fast_path else ""
    client = Client(SERVER_NAME="127.0.0.1")
    with override_settings(TICKWISE={**settings.TICKWISE, "EVENTS_REDIS_URL": redis_url}):
        with CaptureQueriesContext(connection) as queries:
            answer = client.post(f"/api/v1/hooks/{SLUG}", data=delivery.body, content_type="application/json",
                                 headers={k: v for k, v in delivery.headers.items() if k != "content-type"})
    assert answer.status_code == 200, answer.content
    return len(queries)


def _drain() -> int:
    """Rows once gunicorn has finished what it accepted before the load stopped."""
    last, stable = _rows(), 0
    while stable < 3:
        time.sleep(0.2)
        now = _rows()
        stable, last = (stable + 1, last) if now == last else (0, now)
    return last


# --- 1. ingest vs bare --------------------------------------------------------------------


def _ingest(args: argparse.Namespace, base: str) -> dict[str, list[tuple[float, Burst]]]:
    paths = {"ingest": f"/api/v1/hooks/{SLUG}", "bare": f"/bare/hooks/{SLUG}"}
    for side in SIDES:  # warm-up
        wrk_burst(base, paths[side], deliveries_sign(5000, key_b64=KEY), seconds=1, connections=args.connections)
        _drain()
    samples: dict[str, list[tuple[float, Burst]]] = {side: [] for side in SIDES}
    for round_ in range(args.rounds):
        for side in SIDES if round_ % 2 == 0 else SIDES[::-1]:
            deliveries = deliveries_sign(PER_BURST, key_b64=KEY)
            before = _rows()
            burst = wrk_burst(base, paths[side], deliveries, seconds=args.seconds, connections=args.connections)
            accepted = (_drain() - before) / args.seconds
            samples[side].append((accepted, burst))
            print(f"round {round_ + 1} {side:6} {accepted:7.1f} events/s stored, {burst.rps:7.1f} req/s, "
                  f"p50 {burst.p50_ms:.1f} ms, p99 {burst.p99_ms:.1f} ms, errors {burst.errors}", flush=True)
    return samples


# --- 2. duplicates -----------------------------------------------------------------------


def _duplicates(args: argparse.Namespace, servers: dict[str, str]) -> dict[str, tuple[float, float]]:
    import httpx

    delivery = deliveries_sign(1, key_b64=KEY)[0]
    first = httpx.post(f"{servers['with']}/api/v1/hooks/{SLUG}", content=delivery.body, headers=delivery.headers)
    assert first.status_code == 202, first.text
    figures: dict[str, tuple[float, float]] = {}
    for label, base in servers.items():
        rows = _rows()
        burst = wrk_burst(base, f"/api/v1/hooks/{SLUG}", [delivery], seconds=args.seconds,
                          connections=args.connections)
        _drain()
        assert _rows() == rows, "a duplicate was stored"
        statements = _statements(delivery, fast_path=label == "with")
        figures[label] = (burst.rps, statements)
        print(f"duplicates {label:7} fast path: {burst.rps:7.1f} req/s, {statements} SQL statements per "
              f"request, errors {burst.errors}", flush=True)
    return figures


# --- 3. event → run started -----------------------------------------------------------------


def _latency_fixture() -> None:
    from events.models import Subscription
    from schedules.models import Agent
    from workspaces.models import default_workspace

    agent = Agent.objects.create(name="bench-reactor", adapter="echo", workspace_id=default_workspace())
    Subscription.objects.create(workspace_id=agent.workspace_id, agent=agent, name="bench-latency",
                                event_type=LATENCY_TYPE, breaker_limit=1_000_000, debounce_seconds=0)


def _started_latencies(deliveries: list[Delivery], timeout: float) -> list[float]:
    from events.models import Route

    ids = [d.msg_id for d in deliveries]
    deadline = time.monotonic() + timeout
    while True:
        routes = list(Route.objects.filter(event__event_id__in=ids, run__started_at__isnull=False)
                      .values_list("event__received_at", "run__started_at"))
        if len(routes) == len(ids) or time.monotonic() > deadline:
            return [(started - received).total_seconds() * 1000 for received, started in routes]
        time.sleep(0.5)


def _latency(args: argparse.Namespace, base: str, procs: Processes) -> dict[int, tuple[float, float, int, int]]:
    from scheduler_project import cli

    _latency_fixture()
    queues_purge(redis_bench(), QUEUE)  # the ingest phase's routing messages: nobody is waiting for them
    for i in (1, 2):
        procs.start(f"worker{i}", cli.worker_command(f"bench-events-worker{i}"), ready="ready.")
    figures = {}
    for rate in (10, 100):
        deliveries = deliveries_sign(int(rate * args.latency_seconds), key_b64=KEY, event_type=LATENCY_TYPE)
        statuses = paced_send(f"{base}/api/v1/hooks/{SLUG}", deliveries, rate=rate)
        assert all(s == 202 for s in statuses), sorted(set(statuses))
        latencies = _started_latencies(deliveries, timeout=120)
        p50, p99 = latency_summary(latencies)
        figures[rate] = (p50, p99, len(latencies), len(deliveries))
        print(f"{rate:3} events/s: event → run started p50 {p50:.0f} ms, p99 {p99:.0f} ms "
              f"({len(latencies)} of {len(deliveries)} started)", flush=True)
    return figures


# --- the report -----------------------------------------------------------------------------


def _report(args: argparse.Namespace, ingest: dict[str, list[tuple[float, Burst]]],
            duplicates: dict[str, tuple[float, float]], latency: dict[int, tuple[float, float, int, int]]) -> str:
    ratio = median(i[0] / b[0] for i, b in zip(ingest["ingest"], ingest["bare"]))
    lines = [
        f"machine: {machine('Django', 'gunicorn', 'redis', 'psycopg')}",
        f"gunicorn 2 sync workers; wrk -t1 -c{args.connections}, {args.rounds} rounds of {args.seconds:g} s",
        "",
        "| | events stored/s (median) | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for side, title in zip(SIDES, ("`POST /api/v1/hooks/{slug}` (verify + dedup insert + 202)",
                                   "bare Django view (insert the same row)")):
        lines.append(f"| {title} | {median(s[0] for s in ingest[side]):.0f} | "
                     f"{median(s[1].p50_ms for s in ingest[side]):.1f} | "
                     f"{median(s[1].p99_ms for s in ingest[side]):.1f} |")
    lines += [f"\ningest ÷ bare (median of the rounds' pairs): {ratio:.2f} (the bar: at least 0.5)", "",
              "| duplicate flood | requests/s | SQL statements per request |", "|---|---:|---:|"]
    for label, (rps, per_request) in duplicates.items():
        lines.append(f"| {label} the Redis fast path | {rps:.0f} | {per_request:.0f} |")
    if latency:
        lines += ["", "| event → run started (2 workers) | p50 ms | p99 ms | started |", "|---|---:|---:|---:|"]
        for rate, (p50, p99, started, sent) in latency.items():
            lines.append(f"| {rate} events/s for {args.latency_seconds:g} s | {p50:.0f} | {p99:.0f} | "
                         f"{started}/{sent} |")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="ingest rounds (medians reported)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per burst")
    parser.add_argument("--connections", type=int, default=8, help="wrk's concurrent connections")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="seconds of paced events per rate")
    parser.add_argument("--no-latency", dest="latency", action="store_false", help="skip event → run started")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS  # this process and gunicorn's: the bare view's URL too
    os.environ[SECRET_ENV] = f"whsec_{KEY}"
    with bench_stores(DATABASE, REDIS_DB, fresh=True, TICKWISE_QUEUE=QUEUE):
        queues_purge(redis_bench(), QUEUE)
        redis_bench().flushdb()
        _fixture()
        logs = Path(tempfile.mkdtemp(prefix="bench-events-"))
        procs = Processes(process_env(), logs)
        without = Processes({**process_env(), "TICKWISE_EVENTS_REDIS_URL": ""}, logs)
        try:
            # Ready once the bare view answers (405 to a GET) on both workers.
            probe = {"probe": f"/bare/hooks/{SLUG}", "expect": 405}
            base = procs.gunicorn(**probe)
            servers = {"with": base, "without": without.gunicorn("gunicorn-no-fast-path", **probe)}
            ingest = _ingest(args, base)
            duplicates = _duplicates(args, servers)
            without.stop_all()
            latency = _latency(args, base, procs) if args.latency else {}
        finally:
            procs.stop_all()
            without.stop_all()
            print(f"logs: {logs}", flush=True)
        print(_report(args, ingest, duplicates, latency), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
