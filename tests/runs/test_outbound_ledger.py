"""The delivery ledger without workers: one row per (run, URL), skipped runs left out, the API's view, the secret.

The end-to-end paths (a real worker posting to a real receiver) are in
``test_outbound.py``; these build the state explicitly.
"""
from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.db import IntegrityError, connections, transaction
from django.test import Client
from django.utils import timezone

from runs.models import Run, RunState, SkipReason
from runs.outbound import DeliveryStatus, OutboundDelivery
from runs.services.dispatch import UnscheduledRequest, run_dispatch_unscheduled
from runs.services.outbound import outbound_on_run_end, outbound_sweep
from runs.services.signing import SigningSecretError, signer
from schedules.models import Agent
from tests.shells.api.conftest import make_caller  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

URL = "http://127.0.0.1:9/hook"  # never called here


def ended_run(agent: Agent, identity: str, *, state: str = RunState.SUCCEEDED, url: str = "") -> Run:
    now = timezone.now()
    request = UnscheduledRequest(trigger="manual", identity=identity, input="hello", completion_url=url)
    run = run_dispatch_unscheduled(agent, request, now=now, publish=False)
    assert run is not None
    skip = SkipReason.OVERLAP if state == RunState.SKIPPED else ""
    Run.objects.filter(pk=run.pk).update(state=state, skip_reason=skip, finished_at=now, attempt=1,
                                         output={"answer": 42})
    return Run.objects.select_related("agent").get(pk=run.pk)


def end(run: Run) -> int | None:
    with transaction.atomic():
        return outbound_on_run_end(run)


def test_one_delivery_per_run_and_url_whoever_calls(transactional_db):
    agent = Agent.objects.create(name="reporter", completion_url=URL)
    run = ended_run(agent, "once")

    first, second = end(run), end(run)

    assert first is not None and second is None  # the repeat is a no-op, not an error
    delivery = OutboundDelivery.objects.get(run=run)
    assert (delivery.url, delivery.status, delivery.attempts, delivery.event_type) == (
        URL, DeliveryStatus.PENDING, 0, "run.succeeded")
    assert delivery.webhook_id.startswith("msg_") and delivery.next_attempt_at is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboundDelivery.objects.create(run=run, url=URL, webhook_id="msg_other", event_type="run.succeeded",
                                        payload={})


def test_two_concurrent_ends_make_one_delivery(transactional_db):
    """Two connections insert at once; the second waits on the first's row lock, then finds the conflict."""
    agent = Agent.objects.create(name="raced", completion_url=URL)
    run = ended_run(agent, "raced")
    barrier = threading.Barrier(8)

    def racer() -> int | None:
        try:
            barrier.wait()
            return end(run)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: racer(), range(8)))

    assert len([i for i in ids if i is not None]) == 1
    assert OutboundDelivery.objects.filter(run=run).count() == 1


def test_the_sweeper_sends_only_deliveries_without_a_live_message(transactional_db):
    agent = Agent.objects.create(name="swept", completion_url=URL)
    delivery = OutboundDelivery.objects.filter(pk=end(ended_run(agent, "swept")))
    now = timezone.now()
    delivery.update(published_at=None)  # as if the process died between its commit and its publish

    assert outbound_sweep(now=now) == 0  # within the grace: its own on-commit publish may still come
    assert outbound_sweep(now=now + timedelta(seconds=6)) == 1
    assert delivery.get().published_at is not None
    assert outbound_sweep(now=now + timedelta(seconds=6)) == 0  # published: not again

    delivery.update(attempts=1, claimed_until=now + timedelta(minutes=1))  # an attempt in flight
    assert outbound_sweep(now=now + timedelta(seconds=6)) == 0
    delivery.update(claimed_until=now - timedelta(seconds=1))  # its worker died: the claim ran out
    assert outbound_sweep(now=now + timedelta(seconds=6)) == 1
    assert delivery.get().claimed_until is None

    delivery.update(published_at=None, next_attempt_at=now + timedelta(minutes=5))  # a retry, not yet due
    assert outbound_sweep(now=now + timedelta(seconds=6)) == 0
    delivery.update(next_attempt_at=now - timedelta(seconds=1))
    assert outbound_sweep(now=now + timedelta(seconds=6)) == 1


def test_the_payload_is_the_run_as_it_ended(transactional_db):
    agent = Agent.objects.create(name="reporter", completion_url=URL)
    run = ended_run(agent, "payload", state=RunState.DEAD)
    end(run)

    payload = OutboundDelivery.objects.get(run=run).payload
    assert payload["type"] == "run.dead"
    assert payload["timestamp"].endswith("Z")
    data = payload["data"]
    assert data | {"tick_at": None, "finished_at": None, "chain_id": None} == {
        "run_id": run.pk, "agent": "reporter", "agent_id": agent.pk, "schedule_id": None, "trigger": "manual",
        "state": "dead", "output": {"answer": 42}, "error_category": "", "error_message": "", "tick_at": None,
        "started_at": None, "finished_at": None, "attempt": 1, "chain_id": None, "event_depth": 0,
        "session_id": run.session_id, "workspace": agent.workspace.slug}


def test_a_skipped_run_and_a_run_without_a_url_get_no_delivery(transactional_db):
    agent = Agent.objects.create(name="reporter", completion_url=URL)
    quiet = Agent.objects.create(name="quiet")

    assert end(ended_run(agent, "skipped", state=RunState.SKIPPED)) is None
    assert end(ended_run(quiet, "no-url")) is None
    assert not OutboundDelivery.objects.exists()


def test_the_run_url_wins_over_the_agent_url(transactional_db):
    agent = Agent.objects.create(name="reporter", completion_url=URL)
    run = ended_run(agent, "own", url="https://example.invalid/own")
    end(run)
    assert OutboundDelivery.objects.get(run=run).url == "https://example.invalid/own"


def test_the_run_detail_lists_its_deliveries(make_caller):  # noqa: F811
    caller = make_caller("viewer")
    agent = Agent.objects.create(name="reporter", workspace=caller.workspace, completion_url=URL)
    run = ended_run(agent, "api")
    end(run)
    delivery = OutboundDelivery.objects.get(run=run)

    answer = Client().get(f"/api/v1/runs/{run.pk}", headers=caller.headers)

    assert answer.status_code == 200, answer.content
    (listed,) = answer.json()["deliveries"]
    assert listed | {"created_at": None, "next_attempt_at": None} == {
        "webhook_id": delivery.webhook_id, "url": URL, "event_type": "run.succeeded", "status": "pending",
        "attempts": 0, "next_attempt_at": None, "last_status_code": None, "last_error": "", "created_at": None,
        "finished_at": None}


@pytest.mark.parametrize(("secret", "says"), [
    ("", "not set"),
    ("whsec_not base64!", "not base64"),
    ("whsec_" + base64.b64encode(b"short").decode(), "decodes to 5 bytes"),
])
def test_an_unusable_secret_is_named(secret, says):
    with pytest.raises(SigningSecretError, match=says):
        signer(secret)


def test_a_malformed_secret_is_a_system_check_warning(settings):
    settings.TICKWISE = {**settings.TICKWISE, "WEBHOOK_SIGNING_SECRET": "whsec_%%%"}
    assert "tickwise.W010" in [message.id for message in run_checks()]
    usable = "whsec_" + base64.b64encode(bytes(32)).decode()
    settings.TICKWISE = {**settings.TICKWISE, "WEBHOOK_SIGNING_SECRET": usable}
    assert "tickwise.W010" not in [message.id for message in run_checks(include_deployment_checks=True)]

