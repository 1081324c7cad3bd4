"""Cron ticks as UTC instants: wall-clock matches mapped through a zone's DST rules.

The zone's timeline is cut into *segments* between offset transitions. Inside
a segment the offset is constant, so wall time and UTC move together and the
next tick is simply the next matching wall time minus the offset. The DST
hazards all sit at a segment's edges:

* a fold (clocks go back) makes the wall times just before a transition occur
  again just after it: the first pass ends one segment, the second pass starts
  the next, and ``dst_fold`` (or a full-wildcard hour field) decides which
  passes tick;
* a gap (clocks jump forward) has wall times no segment covers: they become
  ``dst_gap_skipped`` ticks (read with the pre-transition offset) or one
  ``dst_gap_shifted`` tick at the transition, belonging to the segment that
  starts there. A gap tick on the instant of a real tick is that real tick:
  the ledger has one row per instant, and the schedule fires then anyway.

Segments are at least a week long in every zone, far longer than any gap or
fold (at most a day), so a segment's ticks never interleave with the next
segment's, and the next tick is the earliest tick of the first segment that
has one.
"""
from __future__ import annotations

from dataclasses import dataclass

from .cron import Cron, compile_cron
from .instants import MAX_SECS, MIN_SECS, naive_from_secs, secs_from_naive, utc_from_secs
from .spec import FOLD_FIRST, FOLD_SECOND, GAP_SHIFTED, GAP_SKIPPED, CronSpec, Nominal
from .zones import Transition, ZoneRules, zone_rules


@dataclass(frozen=True)
class _Raw:
    at: int                  # UTC epoch seconds
    note: str | None = None
    wall: int | None = None  # a skipped tick's nominal wall time, local epoch seconds


@dataclass(frozen=True)
class _Segment:
    start: Transition | None
    end: Transition | None
    offset: int


def next_cron_tick(spec: CronSpec, after: int) -> Nominal | None:
    """The first tick of ``spec`` strictly after UTC epoch second ``after``."""
    if after >= MAX_SECS:
        return None
    after = max(after, MIN_SECS)  # wall times a day either side must stay inside datetime's range
    cron, rules = compile_cron(spec.expr), zone_rules(spec.tz)
    segment = _segment_of(rules, after)
    while True:
        found = _first_in(cron, spec, segment, after)
        if found is not None:
            return _nominal(found, rules)
        end = segment.end
        if end is None or _match(cron, end.at + min(end.before, end.after)) is None:
            return None
        segment = _segment_of(rules, end.at)


def _segment_of(rules: ZoneRules, secs: int) -> _Segment:
    start = rules.transition_at_or_before(secs)
    offset = start.after if start else rules.offset_at(secs)
    return _Segment(start, rules.transition_after(secs), offset)


def _first_in(cron: Cron, spec: CronSpec, segment: _Segment, after: int) -> _Raw | None:
    lo = after + 1 if segment.start is None else max(after + 1, segment.start.at)
    real = _first_real(cron, spec, segment, lo)
    start = segment.start
    if start is None or start.delta <= 0:
        return real
    return _first_gap(cron, spec.dst_gap, start, lo, real) or real


def _first_real(cron: Cron, spec: CronSpec, segment: _Segment, lo: int) -> _Raw | None:
    """The first wall-time match in the segment at or after instant ``lo``, fold rules applied."""
    start, end, offset = segment.start, segment.end, segment.offset
    wall = _match(cron, lo + offset)
    while wall is not None and (end is None or wall < end.at + offset):
        if start is not None and start.delta < 0 and wall < start.at + start.before:
            if _keeps(cron, spec, second=True):
                return _Raw(wall - offset, FOLD_SECOND)
            wall = _match(cron, start.at + start.before)  # skip the rest of the second pass
            continue
        if end is not None and end.delta < 0 and wall >= end.at + end.after:
            return _Raw(wall - offset, FOLD_FIRST) if _keeps(cron, spec, second=False) else None
        return _Raw(wall - offset)
    return None


def _keeps(cron: Cron, spec: CronSpec, *, second: bool) -> bool:
    # An expression that fires every hour keeps its real-time cadence through
    # a fold: both passes are distinct hours of real time.
    if cron.every_hour or spec.dst_fold == "both":
        return True
    return spec.dst_fold == ("last" if second else "first")


def _first_gap(cron: Cron, policy: str, gap: Transition, lo: int, real: _Raw | None) -> _Raw | None:
    """The gap's first tick at or after ``lo``, unless the real tick ``real`` comes first or absorbs it."""
    gap_lo, gap_hi = gap.at + gap.before, gap.at + gap.after
    if policy == "shift":
        if gap.at < lo or (real is not None and real.at <= gap.at):
            return None
        wall = _match(cron, gap_lo)
        return _Raw(gap.at, GAP_SHIFTED) if wall is not None and wall < gap_hi else None
    wall = _match(cron, max(gap_lo, lo + gap.before))
    if wall is None or wall >= gap_hi:
        return None
    at = wall - gap.before
    if real is not None and real.at <= at:
        return None
    return _Raw(at, GAP_SKIPPED, wall)


def _match(cron: Cron, wall: int) -> int | None:
    found = cron.next_at_or_after(naive_from_secs(wall))
    return None if found is None else secs_from_naive(found)


def _nominal(raw: _Raw, rules: ZoneRules) -> Nominal:
    at = utc_from_secs(raw.at)
    if raw.wall is None:
        return Nominal(at, at.astimezone(rules.zone), raw.note)
    # fold=0 reads a non-existent wall time with the offset before the gap,
    # which is exactly the instant ``at``.
    return Nominal(at, naive_from_secs(raw.wall).replace(tzinfo=rules.zone), raw.note)
