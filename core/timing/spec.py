"""Value objects: what a schedule fires on, and the ticks it produces."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from .cron import compile_cron
from .errors import TimingError
from .instants import require_aware
from .zones import zone_rules

GAP_SKIPPED: Final = "dst_gap_skipped"
GAP_SHIFTED: Final = "dst_gap_shifted"
FOLD_FIRST: Final = "dst_fold_first"
FOLD_SECOND: Final = "dst_fold_second"
NOTES: Final = (GAP_SKIPPED, GAP_SHIFTED, FOLD_FIRST, FOLD_SECOND)
DST_GAP_CHOICES: Final = ("skip", "shift")
DST_FOLD_CHOICES: Final = ("first", "last", "both")


@dataclass(frozen=True)
class CronSpec:
    """A cron expression matched on wall-clock time in ``tz``, with its DST policies."""

    expr: str
    tz: str = "UTC"
    dst_gap: str = "skip"
    dst_fold: str = "first"

    def __post_init__(self) -> None:
        compile_cron(self.expr)
        zone_rules(self.tz)
        _check_choice("dst_gap", self.dst_gap, DST_GAP_CHOICES)
        _check_choice("dst_fold", self.dst_fold, DST_FOLD_CHOICES)


@dataclass(frozen=True)
class IntervalSpec:
    """Fixed-rate ticks ``anchor + k * every`` (k >= 0), or one ``every`` after the last finish."""

    every: timedelta
    anchor: datetime
    after_completion: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.every, timedelta):
            raise TimingError(f"interval: every must be a timedelta, not {type(self.every).__name__}")
        if self.every <= timedelta(0):
            raise TimingError(f"interval: every must be positive, got {self.every}")
        require_aware("interval anchor", self.anchor)


@dataclass(frozen=True)
class OnceSpec:
    """A single tick at ``run_at``."""

    run_at: datetime

    def __post_init__(self) -> None:
        require_aware("run_at", self.run_at)


Spec = CronSpec | IntervalSpec | OnceSpec


@dataclass(frozen=True)
class Tick:
    """One tick of a plan.

    ``at`` is the tick's identity (the ledger's ``tick_at``), ``fire_at`` when
    beat fires it (``at`` plus the deterministic jitter), ``local`` the same
    instant as ``at`` on the zone's wall clock (for a skipped gap tick, the
    nominal wall time that does not exist, with the pre-transition offset).
    """

    at: datetime
    fire_at: datetime
    local: datetime
    note: str | None = None

    @property
    def runs(self) -> bool:
        """False only for a tick skipped in a DST gap: it is recorded, not run."""
        return self.note != GAP_SKIPPED


class Nominal(NamedTuple):
    """A tick before jitter: what the spec modules hand to the plan."""

    at: datetime
    local: datetime
    note: str | None = None


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TimingError(f"{name}: '{value}' is not one of {', '.join(choices)}")
