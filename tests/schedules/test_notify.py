"""Wake notices reach the beats of their own stack only (pub/sub ignores Redis database numbers)."""
from __future__ import annotations

from schedules.notify import WakeListener, beat_wake_now, wake_channel


def test_the_channel_is_named_after_the_broker_database_and_queue(settings):
    settings.CELERY_BROKER_URL, settings.CELERY_TASK_DEFAULT_QUEUE = "redis://127.0.0.1:6379/3", "q1"
    assert wake_channel() == "tickwise:beat:wake:3:q1"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379"
    assert wake_channel() == "tickwise:beat:wake:0:q1"


def test_a_notice_wakes_the_beats_of_its_own_stack_only(settings):
    listener = WakeListener()
    listener.wait(0.2)  # subscribed
    own_queue = settings.CELERY_TASK_DEFAULT_QUEUE
    settings.CELERY_TASK_DEFAULT_QUEUE = f"{own_queue}-another-stack"
    beat_wake_now()
    assert listener.wait(0.3) is False
    settings.CELERY_TASK_DEFAULT_QUEUE = own_queue
    beat_wake_now()
    assert listener.wait(5) is True
