"""Every hand-written statement over the registry, in one place: the beat's hot path.

A beat batch is three statements: the due claim, the ledger's insert (see
``runs.sql``) and the advance. Written out and prepared once per connection
(``core.prepared``): building them through the ORM cost more than running
them, every batch. Table and column names come from the model.
"""
from __future__ import annotations

from typing import Any

from core.prepared import Prepared

from .models import Schedule

SCHEDULE = Schedule._meta.db_table
FIELDS: list[Any] = list(Schedule._meta.concrete_fields)

# The due index's predicate, as the partial index ``schedule_due_idx`` states it
# (and ``ScheduleQuerySet.due``).
LIVE = "NOT paused AND deleted_at IS NULL AND next_fire_at IS NOT NULL"
NEXT_DUE = f"SELECT MIN(next_fire_at) FROM {SCHEDULE} WHERE {LIVE}"

# ``Schedule.objects.due(now=…).select_for_update(skip_locked=True)``, written out.
CLAIM_DUE = Prepared(
    "tickwise_schedules_claim_due",
    f"SELECT {', '.join(field.column for field in FIELDS)} FROM {SCHEDULE} "
    f"WHERE {LIVE} AND next_fire_at <= %(now)s::timestamptz "
    f"ORDER BY next_fire_at LIMIT %(batch)s::integer FOR UPDATE SKIP LOCKED")

# The advances of a whole batch in one statement: one array per column, so the
# text (and the plan) is the same for any number of schedules. Each parameter
# is named after the Schedule attribute whose values it carries.
ADVANCED = ("last_tick_at", "next_tick_at", "next_fire_at", "run_count")
_TYPES = {"last_tick_at": "timestamptz", "next_tick_at": "timestamptz", "next_fire_at": "timestamptz",
          "run_count": "integer"}
ADVANCE = Prepared(
    "tickwise_schedules_advance",
    f"UPDATE {SCHEDULE} AS s SET {', '.join(f'{name} = v.{name}' for name in ADVANCED)} "
    f"FROM unnest(%(id)s::bigint[], {', '.join(f'%({name})s::{_TYPES[name]}[]' for name in ADVANCED)}) "
    f"AS v(id, {', '.join(ADVANCED)}) WHERE s.id = v.id")
