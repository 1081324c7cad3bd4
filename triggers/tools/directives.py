"""Directives: what an HTTP agent asks of Tickwise in its answer, ``{"tickwise": {...}}``.

``wakeup`` (one ``schedule`` create: ``in_seconds`` or ``at``, a payload,
a reason), ``schedules`` (a list of ``schedule`` calls, each with its
``action``) and ``wait`` (the ``wait`` tool's arguments, when that tool is
installed). They go through the same tools, guardrails and audit as the
tools API, in the transaction that records the run's success
(``runs.services.execute``): the run's end and what it asked for commit
together. Each directive's result (or refusal) is stored in the run's
output under ``tickwise_results``; a refusal does not fail the run.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from runs.models import Run

from .registry import TOOLS, ToolContext, tool_answer

KEY = "tickwise"


def directives_of(output: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls the answer's directives stand for, in order; a malformed one is an error entry."""
    asked = output.get(KEY)
    if not isinstance(asked, dict):
        return [("", {"error": f"'{KEY}' must be an object of directives"})]
    calls: list[tuple[str, dict[str, Any]]] = []
    wakeup = asked.get("wakeup")
    if wakeup is not None:
        calls.append(("schedule", {**wakeup, "action": "create"} if isinstance(wakeup, dict) else {}))
    for each in asked.get("schedules") or []:
        calls.append(("schedule", each if isinstance(each, dict) else {}))
    if asked.get("wait") is not None:
        calls.append(("wait", asked["wait"] if isinstance(asked["wait"], dict) else {}))
    return calls


def directives_apply(run: Run, output: Any, now: datetime) -> Any:
    """Run the answer's directives as the run's own tool calls; the output, with their results."""
    if not isinstance(output, dict):
        return output
    results = []
    for name, arguments in directives_of(output):
        if not name or name not in TOOLS:
            results.append({"ok": False, "error": "validation-error",
                            "message": arguments.get("error") or f"no tool {name!r} is installed"})
            continue
        results.append(json.loads(tool_answer(ToolContext(run=run), name, arguments, now=now)))
    return {**output, "tickwise_results": results}
