"""Register the housekeeping pulses as django-celery-beat rows (editable in admin)."""
from __future__ import annotations

from django.db import migrations

from runs.pulses import PULSES, ensure_pulses


def add_pulses(apps, schema_editor):
    ensure_pulses(apps.get_model("django_celery_beat", "IntervalSchedule"),
                  apps.get_model("django_celery_beat", "PeriodicTask"))


def remove_pulses(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in PULSES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(add_pulses, remove_pulses)]
