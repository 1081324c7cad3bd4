"""``/runs/{run}/tools/{name}``: the agent's tools over HTTP, one route per registered tool.

Each route's body is the tool's own pydantic model (``triggers.tools``), so
the OpenAPI document shows exactly the JSON Schema the openai adapter offers
a model. The caller is the run's token (``run_auth``), never an API key. A
refusal by a guardrail is a ``quota-exceeded`` problem (422: the same request
will not pass later; change it), whose ``detail`` is the text a model reads.
"""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Router
from pydantic import BaseModel, ConfigDict

from triggers.tools import TOOLS, Tool, ToolContext, ToolRefused, tool_call

from .problems import Problem, ProblemOut
from .responses import json_response
from .run_auth import RunTokenAuth, run_caller

router = Router(tags=["tools"], auth=RunTokenAuth())
PROBLEMS = {code: ProblemOut for code in (401, 403, 404, 409, 422)}


class ToolResultOut(BaseModel):
    """What a tool did: ``ok`` and the tool's own fields (a schedule, a list, a waitpoint)."""

    model_config = ConfigDict(extra="allow")
    ok: bool = True


def _route(tool: Tool) -> None:
    model = tool.model

    def call(request: HttpRequest, run: int, body: Any) -> HttpResponse:
        caller = run_caller(request)
        context = ToolContext(run=caller.run, idempotency_key=request.headers.get("Idempotency-Key", ""))
        try:
            result = tool_call(context, tool.name, body.model_dump(exclude_unset=True), now=timezone.now())
        except ToolRefused as refused:
            raise Problem(refused.status, refused.slug, str(refused)) from None
        return json_response(ToolResultOut(ok=True, **result))

    call.__annotations__["body"] = model
    call.__name__ = f"tool_{tool.name}"
    router.post(f"/{{run}}/tools/{tool.name}", response={200: ToolResultOut, **PROBLEMS},
                summary=tool.description.split(".")[0], description=tool.description)(call)


for _tool in TOOLS.values():
    _route(_tool)
