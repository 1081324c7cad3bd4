"""Outbound completion webhooks through real workers, a real beat and a real receiver on loopback.

The receiver checks every request with a Standard Webhooks verifier written
here from the spec (HMAC-SHA256 over ``{id}.{timestamp}.{body}`` with the
base64-decoded secret, ``v1,<base64>`` in a space-separated list), not with
the project's signer.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from runs.models import Run, RunState
from runs.outbound import DeliveryStatus, OutboundDelivery
from runs.pulses import ensure_pulses
from runs.services.manual import run_now
from runs.services.outbound import outbound_sweep
from scheduler_project.celery import app
from schedules.models import Agent, Schedule
from schedules.services import schedule_save

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
FAST = {"TICKWISE_WEBHOOK_SECRET": SECRET, "TICKWISE_OUTBOUND_BACKOFF": "1", "TICKWISE_OUTBOUND_BACKOFF_MAX": "2",
        "TICKWISE_OUTBOUND_TIMEOUT": "2", "TICKWISE_LEASE_MARGIN": "1"}
DELIVER_DONE = re.compile(r"Task outbound\.deliver\[[0-9a-f-]+\] (?:succeeded|raised|failed)")


def signature_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check, from the spec."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for entry in headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """A loopback HTTP server that records each POST and answers with the next scripted status.

    ``hold`` makes the next request wait (unanswered) until ``release`` is set.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: deque[int] = deque()
        self.hold = False
        self.headers: dict[str, str] = {}  # sent with every answer
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/hook"

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                held, receiver.hold = receiver.hold, False
                status = receiver.statuses.popleft() if receiver.statuses else 200
                receiver.arrived.set()
                if held:
                    receiver.release.wait(60)
                self.send_response(status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def pulses() -> None:
    ensure_pulses(IntervalSchedule, PeriodicTask)  # the test database is flushed between tests


def yearly(agent: Agent, name: str = "yearly", url: str = "") -> Schedule:
    # A yearly cron no beat reaches here: each run is started on demand.
    return schedule_save(Schedule(agent=agent, name=name, cron="0 0 1 1 *", timeout_seconds=30,
                                  overlap_policy="allow", max_concurrent=10, completion_url=url), now=timezone.now())


def settled(waiter, run: Run, status: str = DeliveryStatus.DELIVERED) -> OutboundDelivery:
    return waiter(lambda: OutboundDelivery.objects.filter(run=run, status=status).first(), timeout=60,
                  what=f"run {run.pk}'s delivery to be {status}")


def attempts(delivery: OutboundDelivery) -> list[tuple[int, int | None]]:
    return list(delivery.attempt_log.values_list("number", "status_code"))


def deliver_tasks_done(*workers) -> int:
    return sum(len(DELIVER_DONE.findall(worker.log.read_text())) for worker in workers)


def test_a_succeeded_run_is_posted_once_signed_with_its_chain_headers(stack, waiter, receiver):
    agent = Agent.objects.create(name="reporter", completion_url=receiver.url)
    stack.worker(extra_env=FAST)

    run = run_now(yearly(agent), now=timezone.now())
    delivery = settled(waiter, run)

    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED
    (request,) = receiver.received
    assert signature_valid(SECRET, request.headers, request.body), request.headers
    assert not signature_valid("whsec_" + base64.b64encode(b"x" * 32).decode(), request.headers, request.body)
    assert request.headers["webhook-id"] == delivery.webhook_id and delivery.webhook_id.startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 300
    assert request.headers["content-type"] == "application/json"
    assert request.headers["tickwise-chain-id"] == run.chain_id != ""
    assert request.headers["tickwise-depth"] == str(run.event_depth)
    assert request.headers["tickwise-actor"] == str(agent.pk)
    assert request.headers["tickwise-run"] == str(run.pk)
    assert request.headers["tickwise-workspace"] == agent.workspace.slug
    body = request.json
    assert body["type"] == "run.succeeded"
    data = body["data"]
    assert (data["run_id"], data["agent"], data["agent_id"], data["schedule_id"]) == (
        run.pk, "reporter", agent.pk, run.schedule_id)
    assert (data["state"], data["trigger"], data["attempt"], data["chain_id"]) == ("succeeded", "manual", 1,
                                                                                   run.chain_id)
    assert data["output"] == run.output and data["session_id"] == run.session_id
    assert attempts(delivery) == [(1, 200)]
    assert (delivery.attempts, delivery.last_status_code, delivery.next_attempt_at) == (1, 200, None)


def test_the_schedule_url_wins_over_the_agent_url(stack, waiter, receiver, other_receiver):
    agent = Agent.objects.create(name="two-urls", completion_url=receiver.url)
    own = yearly(agent, "own-url", url=other_receiver.url)
    inherited = yearly(agent, "agent-url")
    stack.worker(extra_env=FAST)

    own_run = run_now(own, now=timezone.now())
    inherited_run = run_now(inherited, now=timezone.now())

    assert settled(waiter, own_run).url == other_receiver.url
    assert settled(waiter, inherited_run).url == receiver.url
    assert [r.json["data"]["run_id"] for r in other_receiver.received] == [own_run.pk]
    assert [r.json["data"]["run_id"] for r in receiver.received] == [inherited_run.pk]


def test_a_receiver_that_fails_twice_gets_three_attempts_with_one_webhook_id(stack, waiter, receiver, pulses):
    receiver.statuses.extend([500, 503])
    agent = Agent.objects.create(name="flaky-receiver", completion_url=receiver.url)
    stack.worker(extra_env=FAST)
    stack.beat(extra_env=FAST)  # the sweeper pulse publishes each retry when it is due

    run = run_now(yearly(agent), now=timezone.now())
    delivery = settled(waiter, run)

    assert attempts(delivery) == [(1, 500), (2, 503), (3, 200)]
    assert len(receiver.received) == 3
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivery.webhook_id}
    assert all(signature_valid(SECRET, r.headers, r.body) for r in receiver.received)
    assert len({r.body for r in receiver.received}) == 1, "the body changed between retries"


def test_a_410_fails_the_delivery_without_a_retry(stack, waiter, receiver):
    receiver.statuses.append(410)
    agent = Agent.objects.create(name="gone", completion_url=receiver.url)
    stack.worker(extra_env=FAST)

    run = run_now(yearly(agent), now=timezone.now())
    delivery = settled(waiter, run, DeliveryStatus.FAILED)

    assert attempts(delivery) == [(1, 410)]
    assert delivery.next_attempt_at is None and delivery.last_error.startswith("HTTP 410")
    assert outbound_sweep(now=timezone.now()) == 0  # nothing left to send
    assert len(receiver.received) == 1
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED  # the delivery's state is its own


def test_a_429_waits_at_least_its_retry_after(stack, waiter, receiver):
    receiver.statuses.append(429)
    receiver.headers["retry-after"] = "1000"
    agent = Agent.objects.create(name="busy", completion_url=receiver.url)
    stack.worker(extra_env=FAST)  # backoff of 1-2 s: only the receiver's wait explains a later retry

    run = run_now(yearly(agent), now=timezone.now())
    delivery = waiter(lambda: OutboundDelivery.objects.filter(run=run, attempts=1, claimed_until=None).first(),
                      timeout=60, what="the first attempt to be recorded")

    assert delivery.status == DeliveryStatus.PENDING and attempts(delivery) == [(1, 429)]
    assert delivery.next_attempt_at - timezone.now() > timedelta(seconds=900)


def test_a_redelivered_message_posts_nothing_more(stack, waiter, receiver):
    receiver.hold = True  # the first POST waits, so its twin arrives while it is in flight
    agent = Agent.objects.create(name="redelivered", completion_url=receiver.url)
    workers = [stack.worker("w1", extra_env=FAST), stack.worker("w2", extra_env=FAST)]

    run = run_now(yearly(agent), now=timezone.now())
    waiter(receiver.arrived.is_set, timeout=60, what="the first POST")
    delivery = OutboundDelivery.objects.get(run=run)
    app.send_task("outbound.deliver", args=[delivery.pk])  # the broker's copy, during the attempt
    waiter(lambda: deliver_tasks_done(*workers) == 1, timeout=30, what="the copy to find nothing to claim")
    receiver.release.set()
    settled(waiter, run)

    app.send_task("outbound.deliver", args=[delivery.pk])  # and a copy after the 2xx was recorded
    waiter(lambda: deliver_tasks_done(*workers) == 3, timeout=30, what="the late copy to be consumed")
    assert len(receiver.received) == 1
    assert attempts(OutboundDelivery.objects.get(pk=delivery.pk)) == [(1, 200)]


def test_a_worker_killed_mid_delivery_is_retried_with_the_same_webhook_id(stack, waiter, receiver, pulses):
    receiver.hold = True  # the first POST never gets its answer: its worker dies holding it
    agent = Agent.objects.create(name="killed", completion_url=receiver.url)
    first = stack.worker("w1", extra_env=FAST)
    stack.beat(extra_env=FAST)

    run = run_now(yearly(agent), now=timezone.now())
    waiter(receiver.arrived.is_set, timeout=60, what="the first POST")
    stack.kill(first)
    stack.worker("w2", extra_env=FAST)
    # The dead worker's claim runs out (its hard time limit plus the margin); the sweeper sends it again.
    delivery = settled(waiter, run)

    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.webhook_id] * 2
    log = list(delivery.attempt_log.values_list("number", "status_code", "error"))
    assert log[0][:2] == (1, None) and "lost" in log[0][2]
    assert log[1] == (2, 200, "")


def test_a_missing_secret_is_recorded_on_the_delivery(stack, waiter, receiver):
    agent = Agent.objects.create(name="unsigned", completion_url=receiver.url)
    env = {**FAST, "TICKWISE_WEBHOOK_SECRET": "", "TICKWISE_OUTBOUND_MAX_ATTEMPTS": "1"}
    stack.worker(extra_env=env)

    run = run_now(yearly(agent), now=timezone.now())
    delivery = settled(waiter, run, DeliveryStatus.DEAD)

    assert "TICKWISE_WEBHOOK_SECRET is not set" in delivery.last_error
    assert attempts(delivery) == [(1, None)]
    assert receiver.received == []  # nothing unsigned leaves


def test_a_skipped_run_is_not_posted(stack, waiter, receiver):
    agent = Agent.objects.create(name="inactive", completion_url=receiver.url)
    schedule = yearly(agent)
    Agent.objects.filter(pk=agent.pk).update(is_active=False)  # the worker skips the run: inactive_agent
    stack.worker(extra_env=FAST)

    run = run_now(schedule, now=timezone.now())
    waiter(lambda: Run.objects.filter(pk=run.pk, state=RunState.SKIPPED).exists(), timeout=60,
           what="the run to be skipped")
    assert not OutboundDelivery.objects.filter(run=run).exists()
