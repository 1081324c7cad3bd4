"""Reads from the registry."""
from __future__ import annotations

import re

from .models import Schedule

# What a person types to name a schedule: its id in ASCII digits, or
# AGENT/NAME. ``str.isdigit`` also accepts "²" (int() then fails) and "١"
# (int() reads it as 1, a different schedule), so ids are ASCII only. Agent
# and schedule names are slugs; anything else (a NUL byte or a lone surrogate
# from a non-UTF-8 argument, which the database driver cannot encode) names
# no schedule and never reaches the query.
_ID = re.compile(r"[0-9]+", re.ASCII)
_SLUG = r"[-a-zA-Z0-9_]{1,100}"
_AGENT_NAME = re.compile(rf"({_SLUG})/({_SLUG})", re.ASCII)
_SLUG_ONLY = re.compile(_SLUG, re.ASCII)
_MAX_ID = 2**63 - 1  # a bigint primary key


class ScheduleRefError(ValueError):
    """A schedule reference that is malformed or names no live schedule; the message is one line."""


class ScheduleRefInvalid(ScheduleRefError):
    """Not an id or AGENT/NAME at all."""


class ScheduleNotFound(ScheduleRefError, LookupError):
    """Well formed, but no live schedule has it."""


def id_or_name(ref: str) -> dict[str, object] | None:
    """The filter a reference stands for: ``{"pk": n}`` (ASCII digits within a bigint), ``{"name": slug}``,
    or None when it is neither. The API's ``{agent}`` and ``{schedule}`` path parts use it too."""
    if _ID.fullmatch(ref):
        # Compared as text first: int() refuses more than 4300 digits.
        fits = len(ref.lstrip("0")) <= len(str(_MAX_ID)) and int(ref) <= _MAX_ID
        return {"pk": int(ref) if fits else -1}
    return {"name": ref} if _SLUG_ONLY.fullmatch(ref) else None


def schedule_lookup(ref: str) -> Schedule:
    """The live schedule a person named by id or ``AGENT/NAME``: the one lookup every shell uses.

    Raises ScheduleRefInvalid when ``ref`` is neither, ScheduleNotFound when
    no live (not deleted) schedule matches; both messages are one line.
    """
    live = Schedule.objects.live().select_related("agent")
    if not isinstance(ref, str):
        raise ScheduleRefInvalid(f"schedule: expected an id or AGENT/NAME, not {type(ref).__name__}")
    if _ID.fullmatch(ref):
        found = live.filter(**(id_or_name(ref) or {})).first()
    elif "/" in ref:
        parts = _AGENT_NAME.fullmatch(ref)
        matches = list(live.filter(agent__name=parts[1], name=parts[2])[:2]) if parts else []
        if len(matches) > 1:  # agent names are unique per workspace only
            raise ScheduleRefInvalid(f"schedule: '{shown(ref)}' names schedules in several workspaces; use its id")
        found = matches[0] if matches else None
    else:
        raise ScheduleRefInvalid(f"schedule: expected an id or AGENT/NAME, got '{shown(ref)}'")
    if found is None:
        raise ScheduleNotFound(f"schedule: no schedule '{shown(ref)}'")
    return found


def shown(value: object, limit: int = 100) -> str:
    """A value safe to print on one line: control characters and lone surrogates escaped, cut short."""
    text = value if isinstance(value, str) else repr(value)
    text = text if len(text) <= limit else text[:limit] + "..."
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
