"""Checks that turn what the database would refuse at save time into ``ValidationError``s.

PostgreSQL refuses a NUL character in text and in ``jsonb``, a lone surrogate
anywhere (psycopg cannot even encode one), and NaN or Infinity in ``jsonb``;
a number too large for a float comes back from ``jsonb`` as a different
number. Found only at save, each of these is an admin 500 or a ``DataError``
in a shell; found here, each is a field error whose message names the field
(and, inside JSON, the path to the bad value). See ``docs/registry.md``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.dateparse import parse_datetime
from django.utils.deconstruct import deconstructible

# Definition instants (run_at, start_at, end_at) fall in this range. A start
# in the year 9999 is a schedule that never fires; the fire-time engine's
# arithmetic stops before the year 9998 anyway.
MIN_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)

# JSON values an agent config may hold. Integers stay within a signed 64-bit
# range (what every JSON consumer reads exactly); a float of 2**53 or more is
# a whole number that ``jsonb`` returns as an integer, not always the same one
# (1e23 comes back as 100000000000000000000000): write those as integers.
JSON_MAX_DEPTH = 32
JSON_MAX_ITEMS = 100_000
JSON_MAX_INT = 2**63
JSON_MAX_FLOAT = 2.0**53

HOUR = 3600
DAY = 24 * HOUR


def at_most(limit: int, unit: str = "") -> MaxValueValidator:
    return MaxValueValidator(limit, message=f"Must be at most {limit}{f' {unit}' if unit else ''}.")


AT_MOST_A_DAY = at_most(DAY, "seconds (24 hours)")


def at_least(limit: int, why: str = "") -> MinValueValidator:
    return MinValueValidator(limit, message=f"Must be at least {limit}{f': {why}' if why else ''}.")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    position = text.find("\x00")
    if position >= 0:
        return f"contains a NUL character (\\x00) at position {position}, which cannot be stored"
    for position, char in enumerate(text):
        if "\ud800" <= char <= "\udfff":
            return (f"contains a lone surrogate (U+{ord(char):04X}) at position {position}, "
                    f"which is not valid Unicode")
    return None


def json_problem(value: Any, name: str = "the value") -> str | None:
    """Why ``value`` is not JSON that ``jsonb`` stores and returns unchanged, or None.

    The answer names the path to the bad part: ``config['headers']['X'] contains …``.
    Walked with an explicit stack and each item's ancestors, so a deep or
    self-containing value gets an answer, not a ``RecursionError``.
    """
    stack: list[tuple[str, Any, tuple[int, ...]]] = [("", value, ())]
    for _ in range(JSON_MAX_ITEMS):
        if not stack:
            return None
        path, item, ancestors = stack.pop()
        problem = _json_item_problem(item, ancestors)
        if problem:
            return f"{name}{path} {problem}"
        inner = (*ancestors, id(item))
        stack.extend((f"{path}{suffix}", child, inner) for suffix, child in _children(item))
    return f"{name} holds more than {JSON_MAX_ITEMS} values" if stack else None


def _json_item_problem(item: Any, ancestors: tuple[int, ...]) -> str | None:
    if id(item) in ancestors:
        return "contains itself"
    if len(ancestors) > JSON_MAX_DEPTH:
        return f"is nested more than {JSON_MAX_DEPTH} levels deep"
    if isinstance(item, dict):
        return next(filter(None, map(_key_problem, item)), None)
    if item is None or isinstance(item, (bool, list)):
        return None
    if isinstance(item, str):
        return text_problem(item)
    if isinstance(item, int):
        return None if -JSON_MAX_INT < item < JSON_MAX_INT else "is an integer outside ±2**63"
    if isinstance(item, float):
        return _float_problem(item)
    return f"is a {type(item).__name__}, not a JSON value (object, array, string, number, true, false, null)"


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str):
        return f"has a key that is not a string ({type(key).__name__})"
    problem = text_problem(key)
    return f"has a key that {problem}" if problem else None


def _float_problem(item: float) -> str | None:
    if not math.isfinite(item):
        return f"is {item}, which JSON cannot hold"
    if abs(item) >= JSON_MAX_FLOAT:
        return f"is a float of 2**53 or more ({item!r}), which is stored inexactly: write it as an integer"
    return None


def _children(item: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(item, dict):
        return ((f"[{key!r}]", child) for key, child in item.items())
    if isinstance(item, list):
        return ((f"[{index}]", child) for index, child in enumerate(item))
    return ()


@deconstructible
class InstantValidator:
    """An aware datetime between ``MIN_INSTANT`` and ``MAX_INSTANT``.

    A naive datetime is refused, never guessed: the zone it was meant in is
    not known here (the admin and the API always send aware values).
    """

    def __call__(self, value: datetime) -> None:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(f"Must carry a timezone; got the naive {value.isoformat()}.", code="naive")
        if not MIN_INSTANT <= value < MAX_INSTANT:
            raise ValidationError("Must be from 1970-01-01 up to (not including) 2200-01-01 UTC.",
                                  code="out_of_range")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InstantValidator)

    def __hash__(self) -> int:
        return hash(InstantValidator)


validate_instant = InstantValidator()


def storage_errors(instance: models.Model, *, exclude: Iterable[str] = ()) -> dict[str, list[ValidationError]]:
    """Field errors for values Django's own field checks let through and the database refuses.

    Run before those checks, whose conversions fail on some of these values
    with a ``TypeError``, ``ValueError`` or ``OverflowError`` instead.
    """
    skipped = set(exclude)
    errors: dict[str, list[ValidationError]] = {}
    for field in instance._meta.concrete_fields:
        if field.name in skipped or _set_by_django(field):
            continue
        problem = value_problem(field, getattr(instance, field.attname))
        if problem:
            errors[field.name] = [ValidationError(f"{problem}.", code="unstorable")]
    return errors


def _set_by_django(field: models.Field) -> bool:
    return isinstance(field, models.AutoField) or getattr(field, "auto_now", False) \
        or getattr(field, "auto_now_add", False)


def value_problem(field: models.Field, value: Any) -> str | None:
    """What is wrong with ``value`` for ``field``, as a sentence naming the field, or None."""
    if value is None:
        return None if field.null else f"{field.name} may not be null"
    if isinstance(field, models.JSONField):
        return json_problem(value, field.name)
    if isinstance(field, models.DateTimeField):
        return _datetime_problem(field.name, value)
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{field.name} {problem}" if problem else None
    if isinstance(value, Decimal) and value.is_nan():
        # A signalling NaN raises on any comparison, Django's own checks included.
        return f"{field.name} must be a number, not {value}"
    if isinstance(field, models.IntegerField) and isinstance(value, (float, Decimal)):
        whole = math.isfinite(value) and value == int(value)
        return None if whole else f"{field.name} must be a finite whole number, got {value}"
    return None


def _datetime_problem(name: str, value: Any) -> str | None:
    """A datetime, or a string Django parses as one; its timezone is ``validate_instant``'s to check.

    Django would take a date, or a date-only string, as midnight in the
    server's zone (with only a warning): a guess, refused here. Anything else
    but a string would raise a ``TypeError`` in Django's parser.
    """
    if isinstance(value, datetime):
        return None
    needs = f"{name} must be a date and time with a UTC offset (ISO 8601)"
    if isinstance(value, date):
        return f"{needs}, not the date {value.isoformat()}"
    if not isinstance(value, str):
        return f"{needs}, not {type(value).__name__}"
    if text_problem(value):
        return f"{name} {text_problem(value)}"
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None  # well formed but impossible (a 30 February): Django's own error names it
    return None if parsed is not None else f"{needs}, got {value[:40]!r}"
