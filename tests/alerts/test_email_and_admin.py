"""Alerts by email (Django's mail settings, a real worker writing with the file backend) and in the admin."""
from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from alerts.models import Alert, AlertDelivery, AlertKind, DeliveryState
from alerts.services import alert_raise


def test_an_alert_is_mailed_to_the_configured_addresses(stack, waiter, settings, tmp_path):
    settings.TICKWISE = {**settings.TICKWISE, "ALERT_EMAILS": ["ops@example.com", "oncall@example.com"]}
    outbox = tmp_path / "mail"
    stack.worker(extra_env={"TICKWISE_ALERT_EMAILS": "ops@example.com,oncall@example.com",
                            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                            "EMAIL_FILE_PATH": str(outbox), "DEFAULT_FROM_EMAIL": "tickwise@example.com"})
    raised = alert_raise(AlertKind.BREAKER_TRIP, key="subscription:7", title="deploys held by its breaker",
                         detail="41 events in 60 s (limit 20)", now=timezone.now())
    delivery = waiter(lambda: AlertDelivery.objects.filter(alert_id=raised.alert_id, state=DeliveryState.SENT)
                      .first(), timeout=30, what="the email to be sent")
    assert (delivery.channel, delivery.target) == ("email", "ops@example.com, oncall@example.com")
    (message,) = [path.read_text() for path in outbox.iterdir()]
    assert "Subject: [Tickwise] deploys held by its breaker" in message
    assert "To: ops@example.com, oncall@example.com" in message
    assert "From: tickwise@example.com" in message
    assert "41 events in 60 s (limit 20)" in message


def test_the_admin_lists_alerts_and_resolves_them(db):
    User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.login(username="root", password="pw")
    raised = alert_raise(AlertKind.AUTO_PAUSE, key="schedule:1", title="reporter/nightly auto-paused after 5 "
                         "consecutive failures", detail="last error (timeout): no answer within 30s",
                         now=timezone.now())
    listing = client.get("/admin/alerts/alert/?open=yes")
    assert listing.status_code == 200 and b"auto-paused after 5 consecutive failures" in listing.content
    page = client.get(f"/admin/alerts/alert/{raised.alert_id}/change/")
    assert page.status_code == 200 and b"no answer within 30s" in page.content
    assert client.get("/admin/alerts/alert/add/").status_code == 403
    done = client.post("/admin/alerts/alert/", {"action": "resolve_selected", "_selected_action": [raised.alert_id]},
                       follow=True)
    assert b"Resolved 1 alert(s)." in done.content
    assert Alert.objects.get(id=raised.alert_id).resolved_by == "root"


def test_staff_see_and_resolve_only_their_workspaces_alerts(db):
    from django.contrib.auth.models import Permission

    from workspaces.models import Membership, Role, Workspace

    mine, theirs = Workspace.objects.create(slug="mine", name="Mine"), Workspace.objects.create(slug="t", name="T")
    user = User.objects.create_user("op", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="alerts"))
    Membership.objects.create(workspace=mine, user=user, role=Role.OPERATOR)
    now = timezone.now()
    ours = alert_raise(AlertKind.AUTO_PAUSE, key="schedule:1", title="ours", detail="", workspace_id=mine.id, now=now)
    alert_raise(AlertKind.AUTO_PAUSE, key="schedule:2", title="theirs", detail="", workspace_id=theirs.id, now=now)
    alert_raise(AlertKind.DLQ_GROWTH, key="dlq", title="installation-wide", detail="", now=now)
    client = Client()
    client.login(username="op", password="pw")
    listing = client.get("/admin/alerts/alert/").content.decode()
    assert "ours" in listing and "theirs" not in listing and "installation-wide" not in listing
    client.post("/admin/alerts/alert/", {"action": "resolve_selected", "_selected_action": [ours.alert_id]})
    assert Alert.objects.get(id=ours.alert_id).resolved_by == "op"
