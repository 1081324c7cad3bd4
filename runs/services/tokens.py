"""Run tokens: the credential each call to an agent carries, so the agent can use Tickwise's tools.

A token is ``twr_`` and 32 random bytes; only its SHA-256 is stored (as API
keys are, ``workspaces.keys``). It is minted per attempt, just before the
call, and it is good only for its own run: the tools API takes it on
``/api/v1/runs/{its run}/tools/…`` and nowhere else. It expires with the
attempt's lease, and once the run has ended it works for a grace period
more (``TICKWISE_RUN_TOKEN_GRACE``), for a tool call the agent sent just
before its answer. No revocation write is needed: the run's own
``finished_at`` is the revocation.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings

from ..models import Run, RunState, RunToken
from .claim import lease_for

PREFIX = "twr_"
SECRET_BYTES = 32
# States in which a run may still act through its token (an ended run gets the grace period).
ACTIVE_STATES = (RunState.PENDING, RunState.RUNNING)


class TokenRefused(ValueError):
    """The token does not let its bearer act on this run; the message says why."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def run_token_mint(run: Run, *, now: datetime) -> str:
    """A new token for this attempt of ``run``; the token is returned once and never stored."""
    token = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    RunToken.objects.create(run=run, attempt=run.attempt, token_hash=_hash(token), created_at=now,
                            expires_at=now + lease_for(run))
    return token


def run_token_verify(token: str, *, run_id: int, now: datetime) -> Run:
    """The run ``token`` lets its bearer act on, which must be ``run_id``; TokenRefused otherwise."""
    if not token.startswith(PREFIX):
        raise TokenRefused("not a Tickwise run token")
    found = RunToken.objects.select_related("run", "run__agent").filter(token_hash=_hash(token)).first()
    if found is None or not hmac.compare_digest(found.token_hash, _hash(token)):
        raise TokenRefused("unknown run token")
    if found.run_id != run_id:
        # The same answer as an unknown token's would hide nothing: the bearer knows its own run.
        raise TokenRefused(f"this run token belongs to run {found.run_id}, not run {run_id}")
    if found.expires_at <= now:
        raise TokenRefused("the run token has expired")
    if not run_token_live(found.run, now=now):
        raise TokenRefused(f"run {found.run_id} has ended; its token is revoked")
    return found.run


def run_token_live(run: Run, *, now: datetime) -> bool:
    """Whether the run still acts: not ended, or ended less than the grace period ago."""
    if run.state in ACTIVE_STATES or run.finished_at is None:
        return True
    return run.finished_at + timedelta(seconds=settings.TICKWISE["RUN_TOKEN_GRACE"]) > now

