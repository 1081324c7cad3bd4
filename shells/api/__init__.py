"""The REST API, ``/api/v1/``: a shell over the same services as the admin and the commands.

django-ninja builds the OpenAPI 3.1 document (``/api/v1/openapi.json``, docs
at ``/api/v1/docs``) from the pydantic bodies in ``schemas``. Every error is
``application/problem+json`` (``problems``); every single object carries a
strong ``ETag`` and every write ``If-Match`` (``versions``); creates and
triggers honour ``Idempotency-Key`` (``idempotency``).
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from . import agents, autonomy, events, hooks, runs, schedules, sources, subscriptions, tools, waitpoints
from .auth import ApiKeyAuth
from .problems import CONTENT_TYPE, Problem

_PROBLEM_REF = "#/components/schemas/ProblemOut"


@csrf_exempt
def _unrouted(request: HttpRequest) -> HttpResponse:
    return Problem(404, "not-found", f"no API route {request.path}").response()


def _problem_405(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """ninja answers a method a path does not take with a bare text 405; the API's errors are problems."""
    @functools.wraps(view)  # keeps ninja's csrf_exempt mark
    def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code != 405 or response.get("Content-Type", "").startswith(CONTENT_TYPE):
            return response
        allowed = response.get("Allow", "")
        return Problem(405, "method-not-allowed", f"{request.method} is not allowed here; allowed: {allowed}",
                       headers={"Allow": allowed}).response()
    return answer


class TickwiseAPI(NinjaAPI):
    """ninja's API, with every error a problem and documented as one.

    ninja documents every response under its renderer's media type; a client
    (or a schema checker) reading that would expect ``application/json``. And
    outside its operations (a path it does not route, a method a path does
    not take) it leaves Django's HTML or bare text answers.
    """

    @property
    def urls(self) -> tuple[list[URLResolver | URLPattern], str, str]:
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                pattern.callback = _problem_405(pattern.callback)
        return [*patterns, re_path(r"^.*$", _unrouted)], app_name, namespace

    def get_openapi_schema(self, *, path_prefix: str | None = None,
                           path_params: dict[str, Any] | None = None) -> Any:
        # Built once per process: the operations never change at run time, and building the
        # document takes seconds on a busy machine, which every GET of openapi.json paid.
        cache: dict[str, Any] = self.__dict__.setdefault("_openapi_documents", {})
        key = repr((path_prefix, sorted((path_params or {}).items())))
        if key not in cache:
            cache[key] = self._openapi_build(path_prefix=path_prefix, path_params=path_params)
        return copy.deepcopy(cache[key])

    def _openapi_build(self, *, path_prefix: str | None, path_params: dict[str, Any] | None) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if content.get("application/json", {}).get("schema", {}).get("$ref") == _PROBLEM_REF:
                        content[CONTENT_TYPE] = content.pop("application/json")
        return schema


api = TickwiseAPI(
    title="Tickwise", version="1", urls_namespace="api-v1", auth=ApiKeyAuth(),
    description="Schedules, triggers and the run ledger of your agents. Authenticate with "
                "`Authorization: Bearer tw_…` (an API key from `manage.py api_key create`). Errors are RFC 9457 "
                "problem documents; writes need `If-Match` with the object's `ETag`.",
)
api.add_router("/agents", agents.router)
api.add_router("/agents", schedules.router)
api.add_router("/runs", runs.router)
api.add_router("/runs", tools.router)  # the agent's tools, authenticated by its run token
api.add_router("/agents", autonomy.agents_router)
api.add_router("/runs", autonomy.runs_router)
api.add_router("/processes", autonomy.processes_router)
api.add_router("/hooks", hooks.router)
api.add_router("/events", events.router)
api.add_router("/sources", sources.router)
api.add_router("/subscriptions", subscriptions.router)
api.add_router("/waitpoints", waitpoints.router)


@api.exception_handler(Problem)
def _problem(request: HttpRequest, problem: Problem) -> HttpResponse:
    return problem.response()


def _field(loc: tuple[object, ...]) -> str:
    """The field a pydantic error names, as the client sent it.

    ninja prefixes the source (``body``, ``query``, ``path``); a body is
    also nested under the view's parameter name, which the client never sees.
    """
    source, *rest = loc or ("body",)
    parts = rest[1:] if source == "body" else rest
    return ".".join(str(part) for part in parts) or str(source)


@api.exception_handler(NinjaValidationError)
def _invalid(request: HttpRequest, error: NinjaValidationError) -> HttpResponse:
    listed = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
              for e in error.errors]
    return Problem(422, "validation-error", "; ".join(f"{e['field']}: {e['message']}" for e in listed),
                   errors=listed).response()


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return Problem(401, "unauthenticated", "send Authorization: Bearer tw_… with an API key",
                   headers={"WWW-Authenticate": 'Bearer realm="tickwise"'}).response()


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return Problem(404, "not-found", "no such resource").response()


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    slug = {401: "unauthenticated", 403: "forbidden", 404: "not-found", 429: "throttled"}.get(
        error.status_code, "validation-error")
    return Problem(error.status_code, slug, str(error)).response()
