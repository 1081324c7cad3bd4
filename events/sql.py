"""Every hand-written statement over the event ledger, in one place.

Column and constraint names come from the model, so a renamed field cannot
leave a statement behind.
"""
from __future__ import annotations

from typing import Any, cast

from django.db import connection
from django.db.models import Field

from .models import InboundEvent

EVENT = InboundEvent._meta.db_table
ONCE = "event_once_per_source"
assert any(getattr(c, "name", "") == ONCE for c in InboundEvent._meta.constraints)


def event_insert_once(values: dict[str, Any]) -> int | None:
    """``INSERT … ON CONFLICT DO NOTHING``: the new row's id, or None when (workspace, source, id) exists.

    ``values`` maps field names (``workspace_id`` style for foreign keys) to
    Python values; each is prepared by its field, so JSON and datetimes are
    adapted as the ORM would.
    """
    fields = [(cast(Field, InboundEvent._meta.get_field(name)), value) for name, value in values.items()]
    columns = ", ".join(field.column for field, _ in fields)
    params = [field.get_db_prep_save(value, connection) for field, value in fields]
    placeholders = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {EVENT} ({columns}) VALUES ({placeholders}) "
                       f"ON CONFLICT ON CONSTRAINT {ONCE} DO NOTHING RETURNING id", params)
        row = cursor.fetchone()
    return int(row[0]) if row else None
