from django.db import migrations

# Frozen here: a migration must not import live code that can change under it.
PULSE = ("tickwise: event router sweeper", "events.sweep_unrouted", 30, "seconds")


def add_pulse(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    name, task, every, period = PULSE
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval})


def remove_pulse(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=PULSE[0]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_pulse, remove_pulse)]
