"""The run token's authentication: good only on ``/api/v1/runs/{its run}/tools/…``.

An agent calls its tools with the token its run handed it
(``Tickwise-Run-Token: twr_…``, or ``Authorization: Bearer twr_…``). The
token names one run; a token shown for another run's path, an API key, or a
token of a run that ended more than the grace period ago is refused. API
keys are not taken here, and the run token is not taken anywhere else: the
rest of the API authenticates with ``ApiKeyAuth`` only.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import APIKeyHeader

from runs.models import Run
from runs.services.tokens import PREFIX, TokenRefused, run_token_verify

from .problems import Problem

HEADER = "Tickwise-Run-Token"


@dataclass(frozen=True)
class RunCaller:
    """The run whose token came with the request."""

    run: Run


def _refused(message: str) -> Problem:
    return Problem(401, "unauthenticated", message, headers={"WWW-Authenticate": f'{HEADER} realm="tickwise"'})


class RunTokenAuth(APIKeyHeader):
    param_name = HEADER

    def _get_key(self, request: HttpRequest) -> str | None:
        # Either header: a client library that only knows bearer tokens works too.
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith(f"Bearer {PREFIX}"):
            return bearer.removeprefix("Bearer ")
        return request.headers.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> RunCaller | None:
        if not key:
            raise _refused(f"send {HEADER}: twr_… with the token your run was given")
        run_id = _path_run(request)
        try:
            return RunCaller(run=run_token_verify(key, run_id=run_id, now=timezone.now()))
        except TokenRefused as refused:
            raise _refused(str(refused)) from None


def _path_run(request: HttpRequest) -> int:
    found = request.resolver_match.kwargs.get("run") if request.resolver_match else None
    try:
        return int(found or "")
    except ValueError:
        raise Problem(404, "not-found", f"no run {found!r} here") from None


def run_caller(request: HttpRequest) -> RunCaller:
    found = getattr(request, "auth", None)
    assert isinstance(found, RunCaller)
    return found
