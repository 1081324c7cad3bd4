"""Markdown tables for the beat benchmark: one per size, with incumbent ÷ Tickwise ratios."""
from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

SYSTEMS = ("tickwise", "dcb", "redbeat")
TITLES = {"tickwise": "Tickwise", "dcb": "django-celery-beat", "redbeat": "celery-redbeat"}

Row = tuple[str, Callable[[dict[str, Any]], float | None], str]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


ROWS: list[Row] = [
    ("idle loop, ms", lambda r: r["idle"]["ms"], "{:.2f}"),
    ("idle loop, store ops", lambda r: r["idle"]["ops"], "{:.0f}"),
    ("1% due loop, ms", lambda r: r["due"]["ms"], "{:.1f}"),
    ("1% due loop, store ops", lambda r: r["due"]["ops"], "{:.0f}"),
    ("1% due loop, per due schedule, ms", lambda r: r["due"]["ms_per_due"], "{:.2f}"),
    ("start-up (construct + first tick), ms", lambda r: r["startup"]["ms"], "{:.0f}"),
    ("start-up, store ops", lambda r: r["startup"]["ops"], "{:.0f}"),
    ("beat memory (RSS gained), MiB", lambda r: r["startup"]["rss_mib"], "{:.1f}"),
    ("change → dispatch, ms", lambda r: _median(r["propagation"]["ms"]), "{:.0f}"),
]


def _cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def _ratio(incumbent: float | None, tickwise: float | None) -> str:
    if incumbent is None or tickwise is None:
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
    return "\n".join(lines + ["", notes(results)])


def notes(results: dict[str, dict[str, Any]]) -> str:
    parts = []
    for system in SYSTEMS:
        if system not in results:
            continue
        result = results[system]
        due = result.get("due", {})
        prop = result.get("propagation", {})
        cut = f", {due['cut_short']} cut short at the time limit and scaled up" if due.get("cut_short") else ""
        parts.append(f"{TITLES[system]}: due per loop {due.get('due', 'n/a')}, dispatched {due.get('sent', 'n/a')}"
                     f" ({due.get('loops', 0)} loops{cut}); change→dispatch over {len(prop.get('ms', []))} edits"
                     f", {prop.get('missed', 0)} missed; beat start to first message {prop.get('ready_ms', 'n/a')} ms")
    return "  \n".join(parts)
