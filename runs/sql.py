"""Every hand-written statement over the ledger, in one place.

The hot paths (a worker's load, claim and outcome; a beat batch's insert and
publish mark) are written out and prepared once per connection (see
``core.prepared``): building them through the ORM cost more than running
them. Table, column and state names come from the models, so a renamed field
or state cannot leave a statement behind. Each transition written here has an
ORM twin only where a general path needs one (the claim), and
``tests/runs/test_sql_paths.py`` proves both write the same columns.
"""
from __future__ import annotations

import functools
import json
from typing import Any

from django.db import connection
from django.db.models import Field, Model

from core.prepared import Prepared
from schedules.models import Agent, Schedule

from .lanes import ROUTINE, ROUTINE_TRIGGERS, URGENT
from .models import AgentCall, CallState, Run, RunState
from .outbound import OutboundDelivery

RUN = Run._meta.db_table
CALL = AgentCall._meta.db_table
SCHEDULE = Schedule._meta.db_table
AGENT = Agent._meta.db_table


def column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return field.column


# --- load: the run with its schedule and agent --------------------------------------

LOAD_LAYOUT: list[tuple[type[Model], list[Any]]] = [
    (model, list(model._meta.concrete_fields)) for model in (Run, Schedule, Agent)]


def _load() -> Prepared:
    select = ", ".join(f"{alias}.{field.column}" for alias, (_, fields) in zip("rsa", LOAD_LAYOUT)
                       for field in fields)
    return Prepared("tickwise_run_load", (
        f"SELECT {select} FROM {RUN} r "
        f"LEFT JOIN {SCHEDULE} s ON s.id = r.{column(Run, 'schedule')} "
        f"JOIN {AGENT} a ON a.id = r.{column(Run, 'agent')} WHERE r.id = %(id)s"))


LOAD = _load()

# --- claim: pending -> running, with the attempt's intent row --------------------------

SCOPE_LOCK = "SELECT pg_advisory_xact_lock(%s);\n"

# Claim if the scope has room, and record the intent: one statement, run right
# after the scope's lock in the same round trip and transaction.
# ``statement_timestamp()`` rather than ``now()``: the latter is the start of
# the transaction, before any wait for the lock. The ORM twin is
# ``claim._take`` (the general path).
_CLAIM_IF_ROOM = f"""
WITH claimed AS (
    UPDATE {RUN}
       SET state = '{RunState.RUNNING}', attempt = attempt + 1, fencing_token = fencing_token + 1,
           lease_owner = %(owner)s, lease_expires_at = statement_timestamp() + %(lease)s::interval,
           started_at = statement_timestamp(), buffered = false, input = %(input)s
     WHERE id = %(id)s AND state = '{RunState.PENDING}' AND fencing_token = %(token)s
       AND (SELECT count(*) FROM {RUN}
             WHERE {{scope}} = %(scope)s AND state = '{RunState.RUNNING}' AND id <> %(id)s) < %(limit)s
    RETURNING id, attempt, fencing_token, idempotency_key
)
INSERT INTO {CALL} (run_id, attempt, fencing_token, idempotency_key, state, started_at, error_message)
SELECT id, attempt, fencing_token, idempotency_key, '{CallState.INTENT}', statement_timestamp(), '' FROM claimed
RETURNING attempt, fencing_token
"""
# The scopes a run can be counted in (``scope.scope_column``); ``id``: a run
# without a schedule is its own scope.
SCOPE_COLUMNS = ("schedule_id", "agent_id", "session_id", "id")
CLAIM_IF_ROOM = {scope: Prepared(f"tickwise_claim_by_{scope}", _CLAIM_IF_ROOM.format(scope=scope))
                 for scope in SCOPE_COLUMNS}

# --- outcome: running -> succeeded | cancelled -------------------------------------------

# The run's outcome, its intent row and the end of the schedule's failure
# streak in one statement (so one round trip and one transaction), fenced by
# the attempt's token. The streak is written only when it is above zero. A
# run asked to stop (a cancel on request, a newer run under cancel_previous)
# that finished anyway is recorded cancelled, however soon it finished. The
# state written comes back (NULL: the token was stale).
SUCCESS = Prepared("tickwise_run_succeeded", f"""
WITH done AS (
    UPDATE {RUN}
       SET state = CASE WHEN cancel_requested_at IS NULL THEN %(state)s ELSE '{RunState.CANCELLED}' END,
           output = %(output)s::jsonb, finished_at = statement_timestamp(),
           lease_expires_at = NULL, error_category = '', error_message = ''
     WHERE id = %(id)s AND state = '{RunState.RUNNING}' AND fencing_token = %(token)s
    RETURNING id, schedule_id, attempt, state
), call AS (
    UPDATE {CALL} SET state = '{CallState.SUCCEEDED}', finished_at = statement_timestamp(), error_message = ''
      FROM done WHERE {CALL}.run_id = done.id AND {CALL}.attempt = done.attempt
), streak AS (
    UPDATE {SCHEDULE} SET consecutive_failures = 0
      FROM done WHERE {SCHEDULE}.id = done.schedule_id AND consecutive_failures > 0
)
SELECT (SELECT state FROM done)
""")

# --- heartbeat: the lease of a running attempt -------------------------------------------

# Every third of a lease, per running attempt; says whether a stop was asked for.
RENEW_LEASE = Prepared("tickwise_renew_lease", f"""
UPDATE {RUN} SET lease_expires_at = statement_timestamp() + %(lease)s::interval
 WHERE id = %(id)s AND state = '{RunState.RUNNING}' AND fencing_token = %(token)s
RETURNING cancel_requested_at IS NOT NULL
""")

# --- stats: a schedule's percentiles over a window ------------------------------------------

# Durations of finished attempts and dispatch lateness, over the run history index.
SCHEDULE_PERCENTILES = f"""
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.95) WITHIN GROUP (ORDER BY d),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY l), percentile_cont(0.95) WITHIN GROUP (ORDER BY l)
  FROM (SELECT extract(epoch FROM finished_at - started_at) * 1000 AS d, lateness_ms AS l
          FROM {RUN} WHERE schedule_id = %(schedule)s AND tick_at >= %(since)s) AS w
"""

# --- publish: the execute messages went out ------------------------------------------

# Once per published batch (every beat batch, every dispatch): one statement
# text for any number of runs.
# The rows are locked in id order first: two publishers marking overlapping
# batches (the beat, the sweeper on two nodes) would otherwise lock them in
# whatever order each scan met them, and deadlock.
MARK_PUBLISHED = Prepared("tickwise_mark_published", f"""
UPDATE {RUN} SET published_at = now()
 WHERE id IN (SELECT id FROM {RUN} WHERE id = ANY(%(ids)s::bigint[]) AND state = '{RunState.PENDING}'
               ORDER BY id FOR UPDATE)
""")


# --- outbox: published runs whose message left the queue ---------------------------------

# For each pending run published at or before %(stale)s (and due), its lane
# and how many pending runs of its lane were published after it (``behind``):
# if its message were still queued, all of theirs would be queued behind it
# (``housekeeping.runs_lost``; a lane is first in, first out, ``runs.lanes``).
# Ties in ``published_at`` (one beat batch) are ordered by id, as they were sent.
_ROUTINE = ", ".join(f"'{trigger}'" for trigger in ROUTINE_TRIGGERS)
PENDING_PUBLISHED_BEHIND = f"""
SELECT id, lane, behind FROM (
    SELECT id, published_at, not_before, lane,
           count(*) OVER (PARTITION BY lane ORDER BY published_at DESC, id DESC) - 1 AS behind
      FROM (SELECT id, published_at, not_before,
                   CASE WHEN "trigger" IN ({_ROUTINE}) THEN {ROUTINE} ELSE {URGENT} END AS lane
              FROM {RUN} WHERE state = '{RunState.PENDING}' AND published_at IS NOT NULL) runs
) pending
 WHERE published_at <= %(stale)s AND (not_before IS NULL OR not_before <= %(now)s)
 ORDER BY published_at, id LIMIT %(batch)s
"""


# --- dispatch: new runs, one statement per batch ----------------------------------------

class RunInsert:
    """``INSERT … SELECT … FROM unnest(one array per column) ON CONFLICT DO NOTHING RETURNING``.

    One statement for a batch of any size, with the same text for every
    size, so it is prepared once per connection: Django's insert compiler
    and PostgreSQL's planner each cost more than the insert of a beat batch
    (VALUES lists change shape with the row count and need chunking under
    PostgreSQL's 65,535 parameters). Values are taken as ``save()`` takes
    them (``pre_save``: ``auto_now_add`` included); JSON travels as text and
    is cast in the select list.
    """

    def __init__(self, fields: list[Any]) -> None:
        self.fields = fields
        arrays = ", ".join(f"%({f.attname})s::{self._array_type(f)}[]" for f in fields)
        columns = ", ".join(f.column for f in fields)
        select = ", ".join(f"u.{f.column}::jsonb" if self._is_json(f) else f"u.{f.column}" for f in fields)
        sql = (f"INSERT INTO {RUN} ({columns}) SELECT {select} "
               f"FROM unnest({arrays}) AS u({columns}) ON CONFLICT DO NOTHING RETURNING id, idempotency_key")
        self.statement = Prepared("tickwise_run_insert", sql)

    @staticmethod
    def _is_json(field: Any) -> bool:
        return bool(field.get_internal_type() == "JSONField")

    @classmethod
    def _array_type(cls, field: Any) -> str:
        return "text" if cls._is_json(field) else str(field.db_type(connection))

    def _column(self, field: Any, runs: list[Run]) -> list[Any]:
        values = [field.pre_save(run, True) for run in runs]
        if self._is_json(field):
            return [None if value is None else json.dumps(value, cls=field.encoder) for value in values]
        return values

    def insert(self, runs: list[Run]) -> dict[str, int]:
        """{idempotency key: id} of the rows this statement inserted."""
        params = {field.attname: self._column(field, runs) for field in self.fields}
        with connection.cursor() as cursor:
            self.statement.execute(cursor, params)
            return {key: pk for pk, key in cursor.fetchall()}


@functools.cache
def run_insert() -> RunInsert:
    return RunInsert([field for field in Run._meta.concrete_fields if not field.primary_key])


# --- outbound: a completion webhook's delivery row, once per (run, url) ----------------

def _outbound_insert() -> str:
    col = {name: column(OutboundDelivery, name) for name in (
        "run", "url", "webhook_id", "event_type", "payload", "status", "attempts", "next_attempt_at", "last_error",
        "created_at")}
    return (f"INSERT INTO {OutboundDelivery._meta.db_table} ({col['run']}, {col['url']}, {col['webhook_id']}, "
            f"{col['event_type']}, {col['payload']}, {col['status']}, {col['attempts']}, {col['next_attempt_at']}, "
            f"{col['last_error']}, {col['created_at']}) "
            "VALUES (%(run)s, %(url)s, %(webhook_id)s, %(event_type)s, %(payload)s::jsonb, %(status)s, 0, "
            "statement_timestamp(), '', statement_timestamp()) "
            f"ON CONFLICT ({col['run']}, {col['url']}) DO NOTHING RETURNING id")


# Due at once; a second end of the same run (or a race) inserts nothing and returns no row.
OUTBOUND_INSERT = _outbound_insert()
