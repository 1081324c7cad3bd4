"""The housekeeping pulses, kept as django-celery-beat rows so they are editable in admin."""
from __future__ import annotations

PULSES = [
    # (name, task, every, period)
    ("tickwise: outbox sweeper", "runs.sweep_outbox", 5, "seconds"),
    ("tickwise: lease reaper", "runs.reap_leases", 15, "seconds"),
    ("tickwise: retention", "runs.purge_finished", 1, "days"),
    ("tickwise: completion webhooks", "outbound.sweep", 5, "seconds"),
    ("tickwise: event router sweeper", "events.sweep_unrouted", 30, "seconds"),
    ("tickwise: event retention", "events.purge", 1, "days"),
    # Timer waits resume and expired waits time out within this pulse of their instant.
    ("tickwise: waitpoint timers and timeouts", "waits.sweep", 2, "seconds"),
]


def ensure_pulses(interval_model, task_model) -> None:
    """Create missing pulse rows; an existing row (perhaps edited or disabled) is left alone."""
    for name, task, every, period in PULSES:
        interval, _ = interval_model.objects.get_or_create(every=every, period=period)
        task_model.objects.get_or_create(name=name, defaults={"task": task, "interval": interval})
