"""Wall-clock times a person types, read in a schedule's zone under its DST policies.

A one-shot ``run_at`` or a window bound (``start_at``, ``end_at``) typed as
"2026-12-02 09:00" means nine in the morning where the schedule lives, not in
UTC. Most wall times name exactly one instant; around a DST change they name
none (a gap) or two (a fold), and the schedule's own ``dst_gap``/``dst_fold``
decide, with the same words as its cron ticks:

* ``dst_fold=first`` (and ``both``: a single time is one instant, so "both"
  reads as the first) takes the first occurrence, ``last`` the second;
* ``dst_gap=shift`` takes the first valid instant after the gap (the
  transition itself, as a shifted cron tick does);
* ``dst_gap=skip`` refuses. A cron tick in a gap is skipped and recorded, and
  the schedule goes on; a typed time that does not exist is the whole
  schedule's instant, and silently never firing would lose it. The error says
  which gap, so the person can pick a time or choose ``shift``.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .errors import TimingError
from .instants import MAX_SECS, MIN_SECS, naive_from_secs
from .spec import DST_FOLD_CHOICES, DST_GAP_CHOICES, _check_choice
from .zones import ZoneRules, zone_rules

# Wall times a day inside the engine's instant range, so no offset can push
# the instant out of ``datetime``'s range.
_EARLIEST = naive_from_secs(MIN_SECS + 86_400)
_END = naive_from_secs(MAX_SECS - 86_400)  # exclusive
_LAST_DAY = (_END - timedelta(days=1)).date()


def resolve_wall_clock(naive: datetime, zone: str, *, gap: str, fold: str, name: str = "time") -> datetime:
    """The aware UTC instant that wall-clock time ``naive`` names in ``zone``.

    ``name`` is the field the time belongs to, for the error message. Raises
    TimingError (one line, naming ``name``) for an aware or out-of-range
    value, an unknown zone or policy, and a gap time under ``gap="skip"``.
    """
    _check_naive(name, naive)
    _check_choice("dst_gap", gap, DST_GAP_CHOICES)
    _check_choice("dst_fold", fold, DST_FOLD_CHOICES)
    rules = zone_rules(zone)
    first = naive.replace(tzinfo=rules.zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=rules.zone, fold=1).astimezone(UTC)
    exists = [at for at in (first, second) if _wall(at, rules) == naive]
    if exists:
        # A fold gives two instants (fold=0 is the earlier); elsewhere both readings agree.
        return max(exists) if fold == "last" else min(exists)
    # In a gap, fold=0 reads the time with the offset before the change, which
    # lands at or after the transition: the transition is the last one before it.
    change = rules.transition_at_or_before(int(first.timestamp()))
    if change is None:  # unreachable: a wall time that does not exist lies in a gap
        raise TimingError(f"{name}: {_shown(naive)} does not exist in {zone}")
    if gap == "shift":
        return datetime.fromtimestamp(change.at, UTC)
    raise TimingError(_gap_message(name, naive, zone, change.at, change.before, change.after))


def _check_naive(name: str, value: datetime) -> None:
    if not isinstance(value, datetime):
        raise TimingError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is not None:
        raise TimingError(f"{name} must be a wall-clock time without an offset, got {value.isoformat()}")
    if not _EARLIEST <= value < _END:
        raise TimingError(f"{name}: {_shown(value)} is outside the supported range "
                          f"({_EARLIEST.date().isoformat()} to {_LAST_DAY.isoformat()})")


def _wall(at: datetime, rules: ZoneRules) -> datetime:
    return at.astimezone(rules.zone).replace(tzinfo=None)


def _shown(value: datetime) -> str:
    return value.isoformat(sep=" ", timespec="minutes" if not value.second and not value.microsecond
                           else "seconds")


def _gap_message(name: str, naive: datetime, zone: str, at: int, before: int, after: int) -> str:
    start, end = naive_from_secs(at + before), naive_from_secs(at + after)
    return (f"{name}: {_shown(naive)} does not exist in {zone} (the clocks jump from "
            f"{_shown(start)} to {_shown(end)}); pick another time, or set dst_gap to shift "
            f"to run at {_shown(end)}")
