"""Create Celery's result cleanup entry with the schema, as the beat would on its first start.

django-celery-beat's scheduler writes ``celery.backend_cleanup`` (daily at
04:00, deleting expired task results) on every start; the Tickwise beat
creates it only when missing, so a start writes nothing.
"""
from __future__ import annotations

from django.conf import settings
from django.db import migrations

NAME = "celery.backend_cleanup"


def add_entry(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=NAME).exists():
        return
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="4", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone=getattr(settings, "CELERY_TIMEZONE", None) or "UTC")
    # As celery's default entry: the message expires after 12 hours.
    PeriodicTask.objects.create(name=NAME, task=NAME, crontab=crontab, expire_seconds=12 * 3600)


def remove_entry(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("schedules", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(add_entry, remove_entry)]
