"""The agent's tools: a registry of name → (pydantic model, service function).

One pydantic model per tool is the tool's whole contract: the body of
``POST /api/v1/runs/{run}/tools/{name}``, its OpenAPI schema, and the JSON
Schema of the function tool offered to a model (``function_definitions``)
all come from it, so they cannot drift. A tool's function takes the calling
run (``ToolContext``) and the validated arguments and returns a JSON object;
a refusal the agent can act on is ``ToolRefused``, whose message is what the
model reads (and, over the API, a problem's ``detail``).
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from ninja.schema import NinjaGenerateJsonSchema
from pydantic import BaseModel
from pydantic import ValidationError as ArgumentsInvalid

from runs.models import Run


@dataclass(frozen=True)
class ToolContext:
    """Who calls: the run (and through it its workspace, agent, session and chain)."""

    run: Run
    # A key the caller gives for this request (the API's ``Idempotency-Key``); empty: derived from the arguments.
    idempotency_key: str = ""


class ToolRefused(Exception):
    """A call the tool will not do, with a message for the model; ``slug`` is the API problem's type."""

    def __init__(self, message: str, *, slug: str = "quota-exceeded", status: int = 422) -> None:
        super().__init__(message)
        self.slug, self.status = slug, status


ToolFunction = Callable[[ToolContext, Any], dict[str, Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    model: type[BaseModel]
    function: Callable[..., dict[str, Any]]  # (ToolContext, model instance, *, now) -> dict

    @functools.cached_property
    def definition(self) -> dict[str, Any]:
        """The OpenAI function tool (``{"type": "function", "function": {...}}``) for this tool.

        Its parameters come from the generator that writes the API's OpenAPI
        document (ninja's, which leaves out ``default: null``), so the model
        and an HTTP client read the same schema. Generated once: every run's
        request carries the definitions, and a schema takes milliseconds to
        generate. Read-only for its users.
        """
        parameters = self.model.model_json_schema(schema_generator=NinjaGenerateJsonSchema)
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": parameters}}


TOOLS: dict[str, Tool] = {}


def tool_register(tool: Tool) -> Tool:
    if tool.name in TOOLS and TOOLS[tool.name] != tool:
        raise ValueError(f"a tool named {tool.name!r} is already registered")
    TOOLS[tool.name] = tool
    return tool


def function_definitions() -> tuple[dict[str, Any], ...]:
    return tuple(tool.definition for tool in TOOLS.values())


def tool_call(context: ToolContext, name: str, arguments: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """Validate ``arguments`` against the tool's model and run it; ToolRefused for an unknown tool."""
    tool = TOOLS.get(name)
    if tool is None:
        raise ToolRefused(f"no tool named {name!r}; the tools are {', '.join(sorted(TOOLS))}",
                          slug="not-found", status=404)
    return tool.function(context, tool.model.model_validate(arguments), now=now)


def tool_answer(context: ToolContext, name: str, arguments: dict[str, Any], *, now: datetime) -> str:
    """``tool_call`` for a model: the result, or the refusal or invalid arguments, as JSON text, never raised.

    A model that reads why its call was refused can change it (a longer delay,
    a one-shot instead of a recurring schedule); an exception would end the run.
    """
    try:
        result: dict[str, Any] = {"ok": True, **tool_call(context, name, arguments, now=now)}
    except ToolRefused as refused:
        result = {"ok": False, "error": refused.slug, "message": str(refused)}
    except ArgumentsInvalid as invalid:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                             for e in invalid.errors())
        result = {"ok": False, "error": "validation-error", "message": problems}
    except ValidationError as invalid:
        result = {"ok": False, "error": "validation-error", "message": "; ".join(invalid.messages)}
    return json.dumps(result, default=str)
