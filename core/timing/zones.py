"""IANA zones from the pinned ``tzdata`` package, and their offset transitions.

Zones are read from the ``tzdata`` package on purpose, not from the host's
``/usr/share/zoneinfo``: ``zoneinfo`` prefers the system files, whose version
differs from node to node, and two nodes that disagree on a rule would compute
different tick instants. The pinned package makes every node agree.

``ZoneRules`` lists the instants where a zone's UTC offset changes. Explicit
transitions come from the TZif file; past the last one, the file's POSIX
footer rule applies, and its yearly transitions are found by probing
``zoneinfo`` itself (cached per year), so the engine and ``zoneinfo`` can never
disagree about an offset.
"""
from __future__ import annotations

import calendar
import difflib
import struct
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from importlib import resources
from io import BytesIO
from zoneinfo import ZoneInfo

from .errors import TimingError
from .instants import MAX_SECS, MIN_SECS, SECOND, naive_from_secs
from .legacyzones import is_regional, refusal, suggestion

DAY = 86_400
# Names zoneinfo accepts that describe no place: the host's own setting, the
# placeholder "Factory" zone, and the legacy rules template.
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


def _tzdata_names() -> frozenset[str]:
    listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(listing.split()) - _NOT_PLACES


def _squashed(name: str) -> str:
    """A name as people mistype it alike: case, spaces, "_" and "-" ignored."""
    return "".join(name.split()).lower().replace("_", "").replace("-", "")


_TZDATA_NAMES = _tzdata_names()
# Regional names only: see ``legacyzones`` for what is refused and why.
ALLOWED_TIMEZONES: frozenset[str] = frozenset(filter(is_regional, _TZDATA_NAMES))
REFUSED_TIMEZONES: frozenset[str] = _TZDATA_NAMES - ALLOWED_TIMEZONES
# Near-miss lookups. A refused name typed loosely suggests its regional zone;
# a bare city ("berlin", "New York") suggests its zone. Where two names end in
# the same city they are one place under two names (America/Indianapolis and
# America/Indiana/Indianapolis), so either is right: the first in order is used.
_BY_SQUASHED = {_squashed(name): hint for name in REFUSED_TIMEZONES if (hint := suggestion(name))} | {
    _squashed(name): name for name in ALLOWED_TIMEZONES}
_BY_CITY: dict[str, str] = {}
for _name in sorted(ALLOWED_TIMEZONES):
    _BY_CITY.setdefault(_squashed(_name.rpartition("/")[2]), _name)


@dataclass(frozen=True)
class Transition:
    """An instant (UTC epoch seconds) where the offset changes."""

    at: int
    before: int
    after: int

    @property
    def delta(self) -> int:
        """Positive for a gap (clocks jump forward), negative for a fold."""
        return self.after - self.before


def validate_timezone(name: str) -> ZoneInfo:
    """The pinned zone for an IANA name from the allow-list, or TimingError."""
    return zone_rules(name).zone


def zone_rules(name: str) -> ZoneRules:
    if not isinstance(name, str):
        raise TimingError(f"timezone must be a string, not {type(name).__name__}")
    if name not in ALLOWED_TIMEZONES:
        raise TimingError(_unknown_zone_message(name))
    return _load(name)


@cache
def _load(name: str) -> ZoneRules:
    path = resources.files("tzdata.zoneinfo").joinpath(*name.split("/"))
    return ZoneRules(name, path.read_bytes())


def _unknown_zone_message(name: str) -> str:
    if not name.strip():
        return "timezone: empty name (use an IANA name such as 'Europe/Berlin')"
    if name in REFUSED_TIMEZONES:
        return refusal(name)
    shown = name if name.isprintable() else repr(name)[1:-1]  # keep the message on one line
    hint = _near_miss(name)
    if hint:
        return f"timezone: unknown zone '{shown}'; did you mean '{hint}'?"
    return f"timezone: unknown zone '{shown}' (use an IANA name such as 'Europe/Berlin')"


def _near_miss(name: str) -> str | None:
    """The zone a mistyped name most likely means: same letters, a bare city, or a close spelling."""
    typed = _squashed(name)
    found = _BY_SQUASHED.get(typed) or _BY_CITY.get(typed)
    if found:
        return found
    close = difflib.get_close_matches(typed, _BY_SQUASHED, n=1, cutoff=0.85)
    if close:
        return _BY_SQUASHED[close[0]]
    close = difflib.get_close_matches(typed, _BY_CITY, n=1, cutoff=0.85)
    return _BY_CITY[close[0]] if close else None


def read_tzif(data: bytes) -> tuple[list[int], str]:
    """Transition instants (version 2+ section) and the POSIX footer of a TZif file."""
    def counts(at: int) -> tuple[int, ...]:
        return struct.unpack(">6l", data[at + 20:at + 44])

    isut, isstd, leap, times, types, chars = counts(0)
    body = 44 + times * 5 + types * 6 + chars + leap * 8 + isstd + isut
    isut, isstd, leap, times, types, chars = counts(body)
    start = body + 44
    instants = list(struct.unpack(f">{times}q", data[start:start + times * 8]))
    end = start + times * 9 + types * 6 + chars + leap * 12 + isstd + isut
    return instants, data[end:].decode("ascii").strip()


def year_start(year: int) -> int:
    return calendar.timegm((year, 1, 1, 0, 0, 0))


class ZoneRules:
    """Offsets and transitions of one zone, all in UTC epoch seconds."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.zone = ZoneInfo.from_file(BytesIO(data), key=name)
        instants, footer = read_tzif(data)
        instants = [t for t in instants if MIN_SECS < t < MAX_SECS]
        self._last = instants[-1] if instants else MAX_SECS
        self._explicit = [t for t in map(self._change_at, instants) if t is not None]
        self._explicit_at = [t.at for t in self._explicit]
        # A footer with a comma carries a DST rule: transitions every year.
        self._footer_rule = bool(instants) and "," in footer
        self._years: dict[int, tuple[Transition, ...]] = {}

    def offset_at(self, secs: int) -> int:
        wall = self.zone.fromutc(naive_from_secs(secs).replace(tzinfo=self.zone))
        return wall.utcoffset() // SECOND  # type: ignore[operator]

    def transition_after(self, secs: int) -> Transition | None:
        """The first transition strictly after ``secs``."""
        i = bisect_right(self._explicit_at, secs)
        if i < len(self._explicit):
            return self._explicit[i]
        if not self._footer_rule or secs >= MAX_SECS:
            return None
        first = naive_from_secs(max(secs, self._last)).year
        for year in range(first, first + 3):
            for change in self._rule_year(year):
                if change.at > secs:
                    return change
        return None  # a footer rule with no real changes (permanent DST)

    def transition_at_or_before(self, secs: int) -> Transition | None:
        if self._footer_rule and secs > self._last:
            year = naive_from_secs(min(secs, MAX_SECS)).year
            floor = naive_from_secs(self._last).year
            for y in range(year, max(floor, year - 2) - 1, -1):
                for change in reversed(self._rule_year(y)):
                    if change.at <= secs:
                        return change
        i = bisect_right(self._explicit_at, secs)
        return self._explicit[i - 1] if i else None

    def _change_at(self, at: int) -> Transition | None:
        before, after = self.offset_at(at - 1), self.offset_at(at)
        return Transition(at, before, after) if before != after else None

    def _rule_year(self, year: int) -> tuple[Transition, ...]:
        found = self._years.get(year)
        if found is None:
            found = self._years[year] = tuple(self._probe_year(year))
        return found

    def _probe_year(self, year: int) -> list[Transition]:
        # Footer rules change the offset at most twice a year, months apart,
        # so a daily probe sees every change; bisection finds its second.
        lo = max(year_start(year) - 1, self._last)
        end = year_start(year + 1) - 1
        found = []
        while lo < end:
            hi = min(lo + DAY, end)
            if self.offset_at(hi) != self.offset_at(lo):
                found.append(self._bisect(lo, hi))
            lo = hi
        return found

    def _bisect(self, lo: int, hi: int) -> Transition:
        before = self.offset_at(lo)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.offset_at(mid) == before:
                lo = mid
            else:
                hi = mid
        return Transition(hi, before, self.offset_at(hi))
