"""API keys: ``tw_<prefix>_<secret>``, 32 random bytes of secret, kept only as a hash.

The prefix is indexed, so finding a key is one lookup; the comparison of
hashes is constant-time. ``last_used_at`` is written at most once a minute
per key: a key used on every request must not turn every read into a write.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F

from .audit import Actor, audit_record
from .models import ApiKey, Workspace
from .roles import member_role

PREFIX_BYTES = 6
SECRET_BYTES = 32
LAST_USED_EVERY = timedelta(minutes=1)


class KeyRefused(ValueError):
    pass


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: str  # shown once, never stored


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_key_create(*, workspace: Workspace, user: User, name: str, expires_at: datetime | None = None,
                   now: datetime | None = None, actor: Actor | None = None) -> IssuedKey:
    """A new key for a member of ``workspace``; the token is in the result only, never stored."""
    if member_role(user.pk, workspace.pk) is None:
        raise KeyRefused(f"{user.get_username()} is not a member of workspace {workspace.slug}")
    prefix = secrets.token_hex(PREFIX_BYTES)
    token = f"tw_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    with transaction.atomic():
        key = ApiKey.objects.create(workspace=workspace, user=user, name=name, prefix=prefix,
                                    key_hash=_hash(token), expires_at=expires_at)
        audit_record(actor, obj=key, action="create", now=now or key.created_at, workspace_id=workspace.pk,
                     version_after=key.version, detail=f"for {user.get_username()}")
    return IssuedKey(key=key, token=token)


def api_key_verify(token: str, *, now: datetime) -> ApiKey:
    """The live key ``token`` stands for; KeyRefused (one message for every reason) otherwise."""
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != "tw":
        raise KeyRefused("not a Tickwise API key")
    key = (ApiKey.objects.select_related("user", "workspace").filter(prefix=parts[1]).first())
    if key is None or not hmac.compare_digest(key.key_hash, _hash(token)):
        raise KeyRefused("unknown API key")
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        raise KeyRefused("the API key is revoked or expired")
    if not key.user.is_active:
        raise KeyRefused("the key's user is inactive")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        ApiKey.objects.filter(id=key.id).update(last_used_at=now)
    return key


def api_key_revoke(key: ApiKey, *, now: datetime, actor: Actor | None = None) -> bool:
    """Revoke once; False when it already was."""
    with transaction.atomic():
        revoked = ApiKey.objects.filter(id=key.id, revoked_at__isnull=True).update(revoked_at=now,
                                                                                 version=F("version") + 1)
        if revoked:
            audit_record(actor, obj=key, action="revoke", now=now, workspace_id=key.workspace_id,
                         version_before=key.version, version_after=key.version + 1)
    key.refresh_from_db()
    return bool(revoked)
