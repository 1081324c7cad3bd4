"""The audit trail: one row per change, written in the same transaction as the change.

Every service that changes an agent, schedule or key takes an ``Actor`` (who,
through which entry point) and calls ``audit_record``; the admin, the
commands and the API pass theirs. A change made by Tickwise itself
(auto-pause, fire-time authorisation) is recorded with ``Actor.system()``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import models

from .models import AuditEntry


@dataclass(frozen=True)
class Actor:
    source: str  # api, admin, command, system
    user_id: int | None = None
    api_key_id: int | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(source="system")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    return value


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for the fields whose value differs, JSON-ready."""
    return {name: [_plain(before.get(name)), _plain(after.get(name))] for name in after
            if _plain(before.get(name)) != _plain(after.get(name))}


def audit_record(actor: Actor | None, *, obj: models.Model, action: str, now: datetime,
                 workspace_id: int | None, version_before: int | None = None, version_after: int | None = None,
                 changes: Mapping[str, list[Any]] | None = None, detail: str = "") -> AuditEntry:
    actor = actor or Actor.system()
    return AuditEntry.objects.create(
        at=now, workspace_id=workspace_id, user_id=actor.user_id, api_key_id=actor.api_key_id,
        source=actor.source, object_type=obj._meta.model_name or "", object_id=obj.pk,
        object_repr=str(obj)[:200], action=action, version_before=version_before,
        version_after=version_after, changes=dict(changes or {}), detail=detail[:500])
