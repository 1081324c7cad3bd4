"""Register the housekeeping pulses as django-celery-beat rows (editable in admin)."""
from __future__ import annotations

from django.db import migrations

# Frozen here: a migration must not import live code that can change under it.
PULSES = [
    # (name, task, every, period)
    ("tickwise: outbox sweeper", "runs.sweep_outbox", 5, "seconds"),
    ("tickwise: lease reaper", "runs.reap_leases", 15, "seconds"),
    ("tickwise: retention", "runs.purge_finished", 1, "days"),
]


def add_pulses(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, every, period in PULSES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval})


def remove_pulses(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in PULSES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(add_pulses, remove_pulses)]
