"""How the run pages print a run's state and its instants: shared by the run page, its chain and the dashboard."""
from __future__ import annotations

from datetime import UTC, datetime

from django.utils.html import format_html
from django.utils.safestring import SafeString

from core import timing
from runs.models import RunState

# Badge colours: green for done, red for what needs a person, amber for "the agent may have acted".
STATE_COLOURS: dict[str, str] = {
    RunState.PENDING: "#6c757d", RunState.RUNNING: "#1f6feb", RunState.SUCCEEDED: "#1a7f37",
    RunState.FAILED: "#cf222e", RunState.DEAD: "#82071e", RunState.CANCELLED: "#57606a",
    RunState.UNKNOWN: "#bf8700", RunState.SKIPPED: "#8c959f", RunState.WAITING: "#8250df",
}
UNCOLOURED = "#6c757d"


def local_time(moment: datetime | None, zone: str | None) -> str:
    """An instant on the zone's wall clock with seconds and the zone's abbreviation (UTC without a zone)."""
    if moment is None:
        return "-"
    try:
        local = moment.astimezone(timing.validate_timezone(zone or "UTC"))
    except timing.TimingError:
        local = moment.astimezone(UTC)
    return f"{local:%Y-%m-%d %H:%M:%S %Z}"


def utc_time(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if moment else "-"


def state_badge(state: str, detail: str = "", *, short: bool = False) -> SafeString:
    """A coloured state; ``short`` (for lists) shows the state's one word, with its full label as the tooltip."""
    label = RunState(state).label if state in RunState.values else state
    return format_html(
        '<span class="tw-state tw-state-{}" title="{}" style="background:{};color:#fff;border-radius:4px;'
        'padding:1px 6px;white-space:nowrap">{}</span>{}', state, label, STATE_COLOURS.get(state, UNCOLOURED),
        state.capitalize() if short else label, format_html(' <small>{}</small>', detail) if detail else "")
