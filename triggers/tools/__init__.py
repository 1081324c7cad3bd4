"""The agent's tools (docs/autonomy.md): what a run may ask of Tickwise while it works.

Importing this package registers every tool; ``registry`` holds them.
"""
from __future__ import annotations

from .. import waits  # noqa: F401  (registers the wait tool)
from .registry import TOOLS, Tool, ToolContext, ToolRefused, function_definitions, tool_answer, tool_call

# Each tool registers itself on import; a new tool is one more line here.
from . import detach, schedule  # noqa: F401  isort: skip

__all__ = ["TOOLS", "Tool", "ToolContext", "ToolRefused", "function_definitions", "tool_answer", "tool_call"]
