"""Cursor pagination: an opaque cursor carries the last id seen, so pages never skip or repeat rows.

Offsets drift when rows are inserted while a client pages (runs are, every
second); a keyset on the primary key does not, and costs one index range scan.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from .problems import Problem

M = TypeVar("M", bound=Model)
MAX_LIMIT = 200
# A cursor this API gives out is a few characters (a base64 id); the bound is
# documented, so a longer one is a 422, not a request line the server refuses.
MAX_CURSOR = 64


def _decode(cursor: str) -> int:
    try:
        value = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode(), 10)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = -1
    if not 0 < value < 2**63:
        raise Problem(422, "validation-error", "cursor: not a cursor this API gave out",
                      errors=[{"field": "cursor", "message": "not a cursor this API gave out"}])
    return value


def _encode(pk: Any) -> str:
    return base64.urlsafe_b64encode(str(pk).encode()).decode().rstrip("=")


def page(queryset: QuerySet[M], *, cursor: str | None, limit: int,
         newest_first: bool = False) -> tuple[list[M], str | None]:
    """Up to ``limit`` rows after ``cursor`` and the cursor of the next page (None on the last)."""
    ordered = queryset.order_by("-pk" if newest_first else "pk")
    if cursor:
        after = _decode(cursor)
        ordered = ordered.filter(pk__lt=after) if newest_first else ordered.filter(pk__gt=after)
    rows = list(ordered[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_encode(rows[-1].pk) if more and rows else None)
