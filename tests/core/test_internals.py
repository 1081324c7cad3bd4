"""The private internals of Django, Celery and django-celery-beat that Tickwise uses are all present.

An upgrade that removes or reshapes one fails here (and in the system check
tickwise.E003), not at run time in a worker or a beat.
"""
from __future__ import annotations

import pytest
from django.core import checks

from core import internals


def test_every_internal_is_present_in_the_installed_versions():
    assert internals.missing_internals() == []


def test_the_check_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(internals, "BEAT_SCHEDULER_STATE", ("_last_timestamp", "_gone_in_a_new_release"))
    errors = [error for error in checks.run_checks() if error.id == "tickwise.E003"]
    assert [error.msg for error in errors] == [
        "django-celery-beat: DatabaseScheduler._gone_in_a_new_release is gone or changed"]


@pytest.mark.django_db
def test_the_sender_builds_messages_celery_can_read():
    """A message sent through the internal path decodes as Celery's own ``send_task`` would."""
    from celery import current_app

    sent = []

    class Producer:
        def publish(self, body, **options):
            sent.append((body, options))

    send = internals.task_message_sender(current_app, "runs.execute")
    # ``send_task_message`` calls ``producer.publish`` (kombu): capture what it would put on the wire.
    send(Producer(), "task-1", [42], time_limit=70, soft_time_limit=60)
    (body, options), = sent
    args, kwargs, _embed = body
    assert (args, kwargs) == ([42], {})
    headers = options["headers"]
    assert headers["task"] == "runs.execute" and headers["id"] == "task-1"
    assert list(headers["timelimit"]) == [70, 60] and headers["ignore_result"] is True
