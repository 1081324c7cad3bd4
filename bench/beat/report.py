"""Markdown tables for the beat benchmark: one per size, with incumbent ÷ Tickwise ratios."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.common import median

SYSTEMS = ("tickwise", "dcb", "redbeat")
TITLES = {"tickwise": "Tickwise", "dcb": "django-celery-beat", "redbeat": "celery-redbeat"}

Row = tuple[str, Callable[[dict[str, Any]], float | None], str]


ROWS: list[Row] = [
    ("idle loop, ms", lambda r: r["idle"]["ms"], "{:,.2f}"),
    ("idle loop, store ops", lambda r: r["idle"]["ops"], "{:.0f}"),
    ("1% due loop, ms", lambda r: ("approx", r["due"]["ms"]) if r["due"]["cut_short"] else r["due"]["ms"],
     "{:,.1f}"),
    ("1% due loop, store ops", lambda r: ("approx", r["due"]["ops"]) if r["due"]["cut_short"] else r["due"]["ops"],
     "{:,.0f}"),
    ("1% due loop, per dispatched schedule, ms", lambda r: r["due"]["ms_per_due"], "{:,.2f}"),
    ("start-up (construct + first tick), ms", lambda r: r["startup"].get("ms") or ("over", r["startup"]["over_ms"]),
     "{:,.0f}"),
    ("start-up, store ops", lambda r: r["startup"]["ops"], "{:.0f}"),
    ("beat memory (RSS gained), MiB", lambda r: r["startup"]["rss_mib"], "{:,.1f}"),
    ("change → dispatch, ms", lambda r: median(r["propagation"]["ms"]) if r["propagation"]["ms"] else None,
     "{:,.0f}"),
]


# A cell is a number, or (kind, number): "over" when a time limit came first (a
# lower bound), "approx" when a loop cut short at its limit was scaled up.
PREFIX = {"over": "> ", "approx": "≈ "}


def _cell(value, fmt: str) -> str:
    if isinstance(value, tuple):
        return PREFIX[value[0]] + fmt.format(value[1])
    return "n/a" if value is None else fmt.format(value)


def _ratio(incumbent, tickwise) -> str:
    if isinstance(incumbent, tuple) and isinstance(tickwise, (int, float)) and tickwise:
        return f"{PREFIX[incumbent[0]]}{incumbent[1] / tickwise:.2g}×"
    if not isinstance(incumbent, (int, float)) or not isinstance(tickwise, (int, float)):
        return "n/a"
    if tickwise == 0:
        return "—" if incumbent == 0 else "∞"
    return f"{incumbent / tickwise:.2g}×"


def _get(result: dict[str, Any], getter) -> float | None:
    try:
        return getter(result)
    except (KeyError, TypeError):
        return None


def size_table(size: int, results: dict[str, dict[str, Any]]) -> str:
    present = [s for s in SYSTEMS if s in results]
    head = ["measure (median)"] + [TITLES[s] for s in present]
    head += [f"{TITLES[s]} ÷ Tickwise" for s in present if s != "tickwise" and "tickwise" in results]
    lines = [f"#### {size:,} schedules", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for label, getter, fmt in ROWS:
        values = {s: _get(results[s], getter) for s in present}
        cells = [label] + [_cell(values[s], fmt) for s in present]
        if "tickwise" in results:
            cells += [_ratio(values[s], values["tickwise"]) for s in present if s != "tickwise"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", notes(results)] + _plans(results.get("tickwise", {})))


def _plans(result: dict[str, Any]) -> list[str]:
    """One line per statement of Tickwise's idle loop on the schedule table: scan, buffers, time."""
    lines = []
    for sql, plan in result.get("explain", {}).items():
        scans = [row.strip().lstrip("-> ").split("  (")[0] for row in plan if "schedule_due_idx" in row]
        scans += [row.strip().lstrip("-> ").split("  (")[0] for row in plan if "Scan on schedules_schedule" in row]
        scan = scans[0] if scans else "no scan of the schedule table"
        buffers = next((row.strip() for row in plan if row.strip().startswith("Buffers")), "")
        runtime = next((row.strip() for row in plan if row.startswith("Execution Time")), "")
        lines.append(f"  \nTickwise idle `{sql[:60]}…`: {scan}; {buffers}; {runtime}")
    return lines


def notes(results: dict[str, dict[str, Any]]) -> str:
    return "  \n".join(_note(TITLES[system], results[system]) for system in SYSTEMS if system in results)


def _note(title: str, result: dict[str, Any]) -> str:
    due, prop = result.get("due", {}), result.get("propagation", {})
    parts = [f"{title}:"]
    if "cut_at_s" in result:
        parts.append(f"stopped at the {result['cut_at_s']:.0f} s phase limit;")
    if due:
        cut = f", {due['cut_short']} cut short at the loop time limit and scaled up" if due["cut_short"] else ""
        parts.append(f"due per loop {due['due']:.0f} (in its scheduler {due['armed']:.0f}), dispatched "
                     f"{due['sent']:.0f} ({due['loops']} loops{cut});")
    if "skipped" in prop:
        parts.append(f"change→dispatch not run ({prop['skipped']})")
    elif prop:
        parts.append(f"change→dispatch over {len(prop['ms'])} edits, {prop['missed']} missed, beat start to "
                     f"first message {prop['ready_ms'] if prop['ready_ms'] is not None else 'n/a'} ms")
    return " ".join(parts)
