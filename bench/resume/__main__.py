"""Resume latency: a waitpoint's completion (the API call returns) → its resumed run started.

    .venv/bin/python -m bench.resume [--waitpoints 100] [--burst-clients 16]

One gunicorn (2 sync workers) serves the API and two Celery workers
(concurrency 1 each) run the resumes, on a fresh database
``tickwise_bench_resume``, Redis database 7, queue ``bench-resume``. An
``echo`` agent's runs are parked on token waitpoints through the park
service (the park is not what is measured). Then, for ``--waitpoints``
waitpoints each:

1. one at a time: ``POST /api/v1/waitpoints/{id}/complete`` with an API
   key, then wait until the resumed run has started before the next;
2. in a burst: every completion sent at once from ``--burst-clients``
   client threads.

For each completion: the resumed run's ``started_at`` (the worker's claim,
database clock) minus the instant the API call returned (this process's
clock; same machine), and the same from the instant the request was sent.
p50 and p99 by nearest rank.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench.common import bench_stores, machine, percentile, process_env, queues_purge, redis_bench
from bench.workers.cpu import Processes

DATABASE = "tickwise_bench_resume"
REDIS_DB = 7
QUEUE = "bench-resume"


def _fixture() -> tuple[str, int]:
    """An operator's API key and an echo agent in one workspace; returns (token, agent id)."""
    from django.contrib.auth import get_user_model

    from schedules.models import Agent
    from workspaces.keys import api_key_create
    from workspaces.models import Membership, Role, Workspace

    space = Workspace.objects.create(slug="bench", name="Bench")
    user = get_user_model().objects.create_user("bench-operator")
    Membership.objects.create(workspace=space, user=user, role=Role.OPERATOR)
    agent = Agent.objects.create(name="bench-resumer", adapter="echo", workspace=space)
    return api_key_create(workspace=space, user=user, name="bench").token, agent.pk


def _parked(agent_id: int, count: int, label: str) -> list[str]:
    """``count`` runs parked on token waits, as the wait tool leaves them; their waitpoint ids."""
    from runs.models import Run, RunState, Trigger
    from triggers.waits import WaitIn, waitpoint_create

    now, ids = datetime.now(UTC), []
    for n in range(count):
        run = Run.objects.create(agent_id=agent_id, trigger=Trigger.MANUAL, tick_at=now, state=RunState.RUNNING,
                                 attempt=1, fencing_token=1, idempotency_key=f"bench-{label}-{n}",
                                 session_id=f"bench-{label}-{n}", started_at=now, chain_id=f"{label}{n}")
        parked = waitpoint_create(run.id, WaitIn(kind="token", timeout_seconds=3600), now=now, attempt=1)
        ids.append(str(parked.waitpoint.id))
    return ids


def _complete(client: object, base: str, token: str, waitpoint: str) -> tuple[float, float]:
    """POST the completion; the instants (epoch seconds) it was sent and its answer arrived."""
    sent = time.time()
    answer = client.post(f"{base}/waitpoints/{waitpoint}/complete",  # type: ignore[attr-defined]
                         json={"payload": {"bench": True}}, headers={"Authorization": f"Bearer {token}"})
    returned = time.time()
    if answer.status_code != 200 or not answer.json()["completed"]:
        raise RuntimeError(f"completion of {waitpoint} answered {answer.status_code}: {answer.text[:300]}")
    return sent, returned


def _started(waitpoints: list[str], timeout: float = 120) -> dict[str, float]:
    """Each waitpoint's resumed run's start (epoch seconds), once all have started."""
    from waitpoints.models import Waitpoint

    deadline = time.monotonic() + timeout
    while True:
        rows = dict(Waitpoint.objects.filter(id__in=waitpoints, resume_run__started_at__isnull=False)
                    .values_list("id", "resume_run__started_at"))
        if len(rows) == len(waitpoints) or time.monotonic() > deadline:
            return {str(key): started.timestamp() for key, started in rows.items()}
        time.sleep(0.01)


Latencies = tuple[list[float], list[float]]  # from the answer's return, from the request's send (ms)


def _one_at_a_time(base: str, token: str, waitpoints: list[str]) -> Latencies:
    import httpx

    returned, sent = [], []
    with httpx.Client(timeout=30) as client:
        for waitpoint in waitpoints:
            at_send, at_return = _complete(client, base, token, waitpoint)
            started = _started([waitpoint])[waitpoint]
            returned.append((started - at_return) * 1000)
            sent.append((started - at_send) * 1000)
    return returned, sent


def _burst(base: str, token: str, waitpoints: list[str], clients: int) -> Latencies:
    import httpx

    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=clients)) as client, \
            ThreadPoolExecutor(clients) as pool:
        times = dict(zip(waitpoints, pool.map(lambda w: _complete(client, base, token, w), waitpoints)))
    started = _started(waitpoints)
    return ([(started[w] - times[w][1]) * 1000 for w in waitpoints if w in started],
            [(started[w] - times[w][0]) * 1000 for w in waitpoints if w in started])


def _line(label: str, latencies: Latencies, sent: int) -> str:
    returned, from_send = latencies
    return (f"| {label} | {percentile(returned, 0.5):.0f} | {percentile(returned, 0.99):.0f} | "
            f"{percentile(from_send, 0.5):.0f} | {percentile(from_send, 0.99):.0f} | {len(returned)}/{sent} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resume", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waitpoints", type=int, default=100, help="waitpoints completed in each phase")
    parser.add_argument("--burst-clients", type=int, default=16, help="client threads sending the burst")
    args = parser.parse_args(argv)
    from scheduler_project import cli

    with bench_stores(DATABASE, REDIS_DB, fresh=True, TICKWISE_QUEUE=QUEUE):
        queues_purge(redis_bench(), QUEUE)
        token, agent_id = _fixture()
        logs = Path(tempfile.mkdtemp(prefix="bench-resume-"))
        procs = Processes(process_env(), logs)
        try:
            base = procs.gunicorn(probe="/api/v1/openapi.json") + "/api/v1"
            for i in (1, 2):
                procs.start(f"worker{i}", cli.worker_command(f"bench-resume-worker{i}"), ready="ready.")
            _one_at_a_time(base, token, _parked(agent_id, 5, "warm"))  # both gunicorn workers, both workers
            single = _one_at_a_time(base, token, _parked(agent_id, args.waitpoints, "single"))
            print(f"one at a time: p50 {percentile(single[0], 0.5):.0f} ms, "
                  f"p99 {percentile(single[0], 0.99):.0f} ms", flush=True)
            burst = _burst(base, token, _parked(agent_id, args.waitpoints, "burst"), args.burst_clients)
            print(f"burst: p50 {percentile(burst[0], 0.5):.0f} ms, p99 {percentile(burst[0], 0.99):.0f} ms",
                  flush=True)
        finally:
            procs.stop_all()
            print(f"logs: {logs}", flush=True)
    print("\n".join([
        f"machine: {machine('Django', 'celery', 'gunicorn', 'psycopg')}",
        "gunicorn 2 sync workers, 2 Celery workers (concurrency 1), an echo agent",
        "", "A negative figure: the resume started before the API's answer reached the client (it is",
        "published when the completion commits, before the response is written).",
        "", "| completion → resumed run started | from the answer: p50 ms | p99 ms | from the request: p50 ms "
            "| p99 ms | started |",
        "|---|---:|---:|---:|---:|---:|",
        _line(f"one at a time, {args.waitpoints} waitpoints", single, args.waitpoints),
        _line(f"burst of {args.waitpoints} ({args.burst_clients} clients)", burst, args.waitpoints),
        "", f"the bar: one-at-a-time p99 under 1000 ms: {'met' if percentile(single[0], 0.99) < 1000 else 'NOT met'}",
    ]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
