"""Vacuum the two tables every tick rewrites sooner than PostgreSQL's defaults would.

Every fired tick rewrites its schedule row (``next_fire_at``) and writes its
run row three or four times (insert, published, claim, outcome). With the
default ``autovacuum_vacuum_scale_factor`` of 20%, a table of 100,000
schedules collects 20,000 dead row versions before a vacuum, and the beat's
due-index probe walks their dead index entries (69 buffers instead of 5 in
the beat benchmark at 100,000 schedules). The schedule table gets a fixed
threshold, so its due index stays tight at any size; the ledger, which grows
to millions of rows, a 2% scale factor (its hot indexes are small partial ones).
"""
from __future__ import annotations

from django.db import migrations

SETTINGS = {
    "schedules_schedule": {"autovacuum_vacuum_scale_factor": "0.0", "autovacuum_vacuum_threshold": "2000",
                           "autovacuum_analyze_scale_factor": "0.02"},
    "runs_run": {"autovacuum_vacuum_scale_factor": "0.02", "autovacuum_analyze_scale_factor": "0.02"},
}


def storage(table: str, values: dict[str, str]) -> migrations.RunSQL:
    pairs = ", ".join(f"{name} = {value}" for name, value in values.items())
    return migrations.RunSQL(sql=f"ALTER TABLE {table} SET ({pairs})",
                             reverse_sql=f"ALTER TABLE {table} RESET ({', '.join(values)})")


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0004_pending_published_index"),
        ("schedules", "0002_celery_backend_cleanup"),
    ]

    operations = [storage(table, values) for table, values in SETTINGS.items()]
