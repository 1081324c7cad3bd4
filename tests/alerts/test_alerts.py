"""Alerts: one per episode, sent once (signed) to a real webhook receiver, not again inside the cool-down.

The raise happens in the test process; ``alerts.deliver`` runs in a real
worker, which posts to a loopback server here.
"""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from alerts.models import Alert, AlertDelivery, AlertKind, DeliveryState
from alerts.services import Raised, alert_raise, alert_resolve
from runs.models import Run, RunState, Trigger
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.execute import run_execute
from schedules.models import Agent, Schedule
from schedules.services import schedule_resume
from tests.adapters.conftest import AgentServer

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes
COOLDOWN = 3600


@pytest.fixture
def receiver():
    server = AgentServer().start()
    yield server
    server.stop()


@pytest.fixture
def webhook(settings, receiver):
    """The test process and the worker both configured for the receiver (the raise checks for channels)."""
    settings.TICKWISE = {**settings.TICKWISE, "ALERT_WEBHOOK_URL": f"{receiver.url}/alerts",
                         "ALERT_WEBHOOK_SECRET": SECRET, "ALERT_WEBHOOK_FORMAT": "standard",
                         "ALERT_COOLDOWN": COOLDOWN}
    return {"TICKWISE_ALERT_WEBHOOK_URL": f"{receiver.url}/alerts", "TICKWISE_ALERT_WEBHOOK_SECRET": SECRET,
            "TICKWISE_ALERT_COOLDOWN": str(COOLDOWN)}


def raise_pause(now, *, key="schedule:1") -> Raised:
    return alert_raise(AlertKind.AUTO_PAUSE, key=key, title="nightly auto-paused", detail="3 failures", now=now)


def verified(delivery) -> dict:
    """The body, checked against the Standard Webhooks signature (raises when it does not match)."""
    import json
    return Webhook(SECRET).verify(json.dumps(delivery.body), delivery.headers)


def test_an_episode_is_sent_once_signed_and_again_only_after_the_cool_down(stack, webhook, receiver, waiter):
    stack.worker(extra_env=webhook)
    now = timezone.now()
    first = raise_pause(now)
    again = raise_pause(now + timedelta(minutes=5))
    assert (first.opened, first.notification) == (True, 1)
    assert (again.opened, again.notification) == (False, None)
    waiter(lambda: receiver.deliveries, timeout=30, what="the first notification")
    later = raise_pause(now + timedelta(seconds=COOLDOWN + 1))
    assert (later.alert_id, later.notification) == (first.alert_id, 2)
    waiter(lambda: len(receiver.deliveries) >= 2, timeout=30, what="the notification after the cool-down")

    bodies = [verified(delivery) for delivery in receiver.deliveries]
    assert [(b["type"], b["data"]["id"], b["data"]["notification"]) for b in bodies] == [
        ("alert.auto_pause", first.alert_id, 1), ("alert.auto_pause", first.alert_id, 2)]
    assert [d.headers["webhook-id"] for d in receiver.deliveries] == [f"alert_{first.alert_id}_1",
                                                                      f"alert_{first.alert_id}_2"]
    alert = Alert.objects.get()
    assert (alert.raised_count, alert.notifications) == (3, 2)
    waiter(lambda: AlertDelivery.objects.filter(state=DeliveryState.SENT).count() == 2, timeout=30,
           what="both sends recorded as sent")


def test_a_resolved_episode_is_followed_by_a_new_one_that_is_sent(stack, webhook, receiver, waiter):
    stack.worker(extra_env=webhook)
    now = timezone.now()
    first = raise_pause(now)
    assert alert_resolve([first.alert_id], by="ops", now=now) == 1
    second = raise_pause(now + timedelta(minutes=1))
    assert second.opened and second.alert_id != first.alert_id
    waiter(lambda: len(receiver.deliveries) >= 2, timeout=30, what="one notification per episode")
    assert sorted(verified(d)["data"]["id"] for d in receiver.deliveries) == [first.alert_id, second.alert_id]


def test_a_failed_send_is_recorded_with_its_outcome(stack, webhook, receiver, waiter):
    receiver.reply(503, {"error": "down"})
    stack.worker(extra_env=webhook)
    raised = raise_pause(timezone.now())
    delivery = waiter(lambda: AlertDelivery.objects.filter(alert_id=raised.alert_id)
                      .exclude(state=DeliveryState.SENDING).first(), timeout=30, what="the send's outcome")
    assert (delivery.state, delivery.status_code, delivery.channel) == (DeliveryState.FAILED, 503, "webhook")
    assert "HTTP 503" in delivery.error


def test_two_connections_raising_at_once_open_one_episode(transactional_db):
    now, barrier, results = timezone.now(), threading.Barrier(2), []

    def race() -> None:
        barrier.wait()
        try:
            results.append(raise_pause(now, key="schedule:race"))
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.opened for r in results) == [False, True]
    assert [r.notification for r in results if r.opened] == [1]
    assert Alert.objects.get(key="schedule:race").raised_count == 2


def test_an_unknown_kind_is_refused_by_name(db):
    with pytest.raises(ValueError, match="'on_fire'"):
        alert_raise("on_fire", key="x", title="t", detail="", now=timezone.now())


def test_auto_pause_raises_one_alert_for_the_schedule(db):
    agent = Agent.objects.create(name="flaky", config={"fail": "permanent"})
    schedule = Schedule.objects.create(agent=agent, name="nightly", cron="0 3 * * *", failure_limit=2)
    now = timezone.now()
    for minute in range(3):
        tick = now - timedelta(minutes=10 - minute)
        run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=tick), now=tick,
                           publish=False)
        assert run_execute(run.id, owner="w", now=now) == RunState.FAILED
    schedule.refresh_from_db()
    assert schedule.paused
    alert = Alert.objects.get()
    assert (alert.kind, alert.key, alert.workspace_id) == (AlertKind.AUTO_PAUSE, f"schedule:{schedule.id}",
                                                          agent.workspace_id)
    assert "echo configured to fail" in alert.detail
    assert Run.objects.filter(schedule=schedule).count() == 3

    # Resumed and failing again inside the cool-down: a new episode, sent, not a count on the old one.
    schedule_resume(schedule, now=now)
    assert Alert.objects.get(id=alert.id).resolved_by == "tickwise: resumed"
    for minute in range(2):
        tick = now + timedelta(minutes=minute + 1)
        run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=tick), now=tick,
                           publish=False)
        assert run_execute(run.id, owner="w", now=tick) == RunState.FAILED
    again = Alert.objects.get(resolved_at__isnull=True)
    assert again.id != alert.id and again.notifications == 1


def test_the_slack_format_is_an_incoming_webhook_message(db):
    from alerts.channels import webhook_body

    now = timezone.now()
    raised = raise_pause(now)
    body = webhook_body(Alert.objects.get(id=raised.alert_id), notification=1, fmt="slack", now=now)
    assert body["text"].startswith(":rotating_light: *nightly auto-paused*\n3 failures")
    assert body["tickwise"]["kind"] == "auto_pause"


@pytest.mark.parametrize(("conf", "says"), [
    ({"ALERT_WEBHOOK_URL": "ftp://x", "ALERT_WEBHOOK_SECRET": SECRET},
     r"TICKWISE_ALERT_WEBHOOK_URL must be an http\(s\) URL"),
    ({"ALERT_WEBHOOK_URL": "https://x", "ALERT_WEBHOOK_SECRET": "hunter2"}, "whsec_"),
    ({"ALERT_WEBHOOK_URL": "https://x", "ALERT_WEBHOOK_SECRET": ""}, "set a whsec_ secret"),
])
def test_a_webhook_setting_that_cannot_work_stops_the_process_naming_the_variable(conf, says):
    from django.core.exceptions import ImproperlyConfigured

    from scheduler_project.env import check_alert_webhook

    with pytest.raises(ImproperlyConfigured, match=says):
        check_alert_webhook({"ALERT_WEBHOOK_FORMAT": "standard", **conf})
    check_alert_webhook({"ALERT_WEBHOOK_FORMAT": "slack", "ALERT_WEBHOOK_URL": "https://x", "ALERT_WEBHOOK_SECRET": ""})
