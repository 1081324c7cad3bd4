"""Plugs the tools into the ledger's execute path (``runs.services.hooks``), called once at startup.

The ledger cannot import ``triggers``; this registers, from above, the
function tools offered to a run's model, the executor of their calls, the
directives of an HTTP agent's answer and what follows a run's end.
"""
from __future__ import annotations

from typing import Any

from django.utils import timezone

from adapters.base import ToolExecutor
from runs.models import Run
from runs.services.hooks import run_hooks

from ..waits import waitpoints_complete_for_run
from .directives import directives_apply
from .processes import on_run_ended
from .registry import ToolContext, function_definitions, tool_answer


def tools_for(run: Run) -> tuple[dict[str, Any], ...]:
    return function_definitions()


def executor_for(run: Run) -> ToolExecutor:
    def execute(name: str, arguments: dict[str, Any]) -> str:
        # Read when the model asks: a conversation can take minutes, and a
        # delay measured from the attempt's start would land early.
        return tool_answer(ToolContext(run=run), name, arguments, now=timezone.now())
    return execute


def tools_install() -> None:
    hooks = run_hooks()
    hooks.tools = tools_for
    hooks.tool_executor = executor_for
    hooks.output = directives_apply
    # Watch schedules stop before the waits on the run complete: a resume never sees its watcher fire.
    for hook in (on_run_ended, waitpoints_complete_for_run):
        if hook not in hooks.ended:
            hooks.ended.append(hook)
