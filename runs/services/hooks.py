"""Hooks a higher layer registers into the ledger, so the ledger never imports it.

The agent's tools and the directives in an HTTP agent's answer belong to
``triggers`` (they create schedules and waitpoints), but they must act inside
the worker's execute path and inside the transaction that records an
outcome or ends a run. ``triggers.tools.hooks`` registers them when the apps
are ready (``shells.apps``); with nothing registered, runs execute as before.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.base import ToolExecutor

from ..models import Run


@dataclass
class RunHooks:
    # The function-tool definitions offered to a run's agent (the openai adapter's ``tools``).
    tools: Callable[[Run], tuple[dict[str, Any], ...]] | None = None
    # An executor for the tool calls of one attempt of a run.
    tool_executor: Callable[[Run], ToolExecutor] | None = None
    # Applies what an answer asks of Tickwise (``{"tickwise": {...}}``) in the
    # transaction that records the success; returns the output to store.
    output: Callable[[Run, Any, datetime], Any] | None = None
    # Called in the transaction of every terminal transition, before the completion is reported.
    # ``now`` is None on the success path, whose end the database's clock stamped.
    ended: list[Callable[[Run, datetime | None], None]] = field(default_factory=list)


HOOKS = RunHooks()


def run_hooks() -> RunHooks:
    return HOOKS
