"""Run tokens: the credential each call to an agent carries, so the agent can use Tickwise's tools.

A token is ``twr_<run>_<attempt>_<expiry>_<signature>``: the signature is an
HMAC-SHA256 of the rest under a key derived from the server's
``SECRET_KEY`` (``salted_hmac``), checked in constant time. Nothing is stored:
minting costs no statement on the worker's hot path, and there is no token
table to leak (stronger than a hash at rest). It is good only for its own
run: the tools API takes it on ``/api/v1/runs/{its run}/tools/…`` and nowhere
else, and through the run it is scoped to the run's workspace, agent and
session. It expires with the attempt's lease, and once the run has ended it
works for a grace period more (``TICKWISE_RUN_TOKEN_GRACE``), for a tool call
sent just before the answer: the run's own ``finished_at`` is the revocation.
Rotating ``SECRET_KEY`` revokes every token.
"""
from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils.crypto import salted_hmac

from ..models import Run, RunState
from .claim import lease_for

PREFIX = "twr_"
SALT = "tickwise.runs.run-token"
# States in which a run may still act through its token (an ended run gets the grace period).
ACTIVE_STATES = (RunState.PENDING, RunState.RUNNING)


class TokenRefused(ValueError):
    """The token does not let its bearer act on this run; the message says why."""


def _signature(claims: str) -> str:
    return salted_hmac(SALT, claims, algorithm="sha256").hexdigest()


def run_token_mint(run: Run, *, now: datetime) -> str:
    """A token for this attempt of ``run``, valid until the attempt's lease would expire."""
    expires = int((now + lease_for(run)).timestamp())
    claims = f"{run.pk}_{run.attempt}_{expires}"
    return f"{PREFIX}{claims}_{_signature(claims)}"


def run_token_verify(token: str, *, run_id: int, now: datetime) -> Run:
    """The run ``token`` lets its bearer act on, which must be ``run_id``; TokenRefused otherwise."""
    token_run, expires = _claims(token)
    if token_run != run_id:
        # The bearer knows its own run: naming it hides nothing and helps a confused client.
        raise TokenRefused(f"this run token belongs to run {token_run}, not run {run_id}")
    if datetime.fromtimestamp(expires, UTC) <= now:
        raise TokenRefused("the run token has expired")
    run = Run.objects.select_related("agent").filter(pk=run_id).first()
    if run is None:
        raise TokenRefused(f"run {run_id} no longer exists")
    if not run_token_live(run, now=now):
        raise TokenRefused(f"run {run_id} has ended; its token is revoked")
    return run


def _claims(token: str) -> tuple[int, int]:
    """The run id and expiry a well-signed token carries."""
    parts = token.removeprefix(PREFIX).split("_") if token.startswith(PREFIX) else []
    if len(parts) != 4 or not all(part.isdigit() for part in parts[:3]):
        raise TokenRefused("not a Tickwise run token")
    claims, signature = "_".join(parts[:3]), parts[3]
    if not hmac.compare_digest(signature, _signature(claims)):
        raise TokenRefused("unknown run token")
    return int(parts[0]), int(parts[2])


def run_token_live(run: Run, *, now: datetime) -> bool:
    """Whether the run still acts: not ended, or ended less than the grace period ago."""
    if run.state in ACTIVE_STATES or run.finished_at is None:
        return True
    return run.finished_at + timedelta(seconds=settings.TICKWISE["RUN_TOKEN_GRACE"]) > now
