"""Bounds on the registry's sizes and instants; a schedule with nothing left to fire is marked finished.

Existing schedules the beat had already left with no next fire time are
marked as the beat now marks them (max_runs reached, one-shot passed, window
ended); an after-completion interval waiting on a run in flight is left alone
while its window is open.
"""

import django.core.validators
import schedules.validators
from django.conf import settings
from django.db import migrations, models
from django.db.models.functions import Coalesce, Now


def mark_finished(apps, schema_editor):
    Schedule = apps.get_model("schedules", "Schedule")
    silent = Schedule.objects.filter(deleted_at__isnull=True, next_fire_at__isnull=True, finished_reason="")
    silent.filter(max_runs__isnull=False, run_count__gte=models.F("max_runs")).update(
        finished_reason="max_runs", finished_at=Coalesce("last_tick_at", "updated_at"))
    silent.filter(kind="once").update(finished_reason="run_at_passed", finished_at=Coalesce("last_tick_at", "run_at"))
    silent.filter(end_at__lt=Now()).update(finished_reason="window_ended", finished_at=Coalesce("last_tick_at", "end_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('schedules', '0002_celery_backend_cleanup'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='schedule',
            name='finished_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='schedule',
            name='finished_reason',
            field=models.CharField(blank=True, choices=[('max_runs', 'Ran max_runs times'), ('run_at_passed', 'One-shot instant passed'), ('window_ended', 'Window ended (end_at)'), ('no_more_ticks', 'No further tick')], editable=False, max_length=20),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='end_at',
            field=models.DateTimeField(blank=True, null=True, validators=[schedules.validators.InstantValidator()]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='failure_limit',
            field=models.PositiveIntegerField(default=5, help_text='Pause after this many consecutive failures (0 = never).', validators=[django.core.validators.MaxValueValidator(1000, message='Must be at most 1000.')]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='interval_seconds',
            field=models.PositiveIntegerField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(1, message='Must be at least 1.'), django.core.validators.MaxValueValidator(31622400, message='Must be at most 31622400 seconds (366 days).')]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='jitter_seconds',
            field=models.PositiveIntegerField(default=0, validators=[django.core.validators.MaxValueValidator(86400, message='Must be at most 86400 seconds (24 hours).')]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='max_attempts',
            field=models.PositiveIntegerField(default=3, validators=[django.core.validators.MinValueValidator(1, message='Must be at least 1.'), django.core.validators.MaxValueValidator(100, message='Must be at most 100.')]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='max_concurrent',
            field=models.PositiveIntegerField(default=1, validators=[django.core.validators.MinValueValidator(1, message='Must be at least 1.'), django.core.validators.MaxValueValidator(1000, message='Must be at most 1000.')]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='max_runs',
            field=models.PositiveIntegerField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(1, message='Must be at least 1: a schedule allowed no runs would never fire.')]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='missed_grace_seconds',
            field=models.PositiveIntegerField(default=60, validators=[django.core.validators.MaxValueValidator(604800, message='Must be at most 604800 seconds (7 days).')]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='replay_cap',
            field=models.PositiveIntegerField(default=100, validators=[django.core.validators.MaxValueValidator(10000, message='Must be at most 10000.')]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='retry_backoff_max_seconds',
            field=models.PositiveIntegerField(default=600, validators=[django.core.validators.MaxValueValidator(86400, message='Must be at most 86400 seconds (24 hours).')]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='retry_backoff_seconds',
            field=models.PositiveIntegerField(default=10, validators=[django.core.validators.MaxValueValidator(86400, message='Must be at most 86400 seconds (24 hours).')]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='run_at',
            field=models.DateTimeField(blank=True, help_text='One-shot fire instant.', null=True, validators=[schedules.validators.InstantValidator()]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='start_at',
            field=models.DateTimeField(blank=True, null=True, validators=[schedules.validators.InstantValidator()]),
        ),
        migrations.AlterField(
            model_name='schedule',
            name='timeout_seconds',
            field=models.PositiveIntegerField(default=300, validators=[django.core.validators.MinValueValidator(1, message='Must be at least 1.'), django.core.validators.MaxValueValidator(86400, message='Must be at most 86400 seconds (24 hours).')]),
        ),
        migrations.AddConstraint(
            model_name='schedule',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('finished_at__isnull', True), ('finished_reason', '')), models.Q(models.Q(('finished_reason', ''), _negated=True), ('finished_at__isnull', False)), _connector='OR'), name='schedule_finished_has_reason_and_time'),
        ),
        migrations.RunPython(mark_finished, migrations.RunPython.noop),
    ]
