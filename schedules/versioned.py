"""Optimistic concurrency for the registry's objects: a row locked at the version its editor read.

Agents, schedules, webhook sources and subscriptions carry a ``version`` that
moves with every change their representation shows. An edit names the version
it was made on; the compare happens under the row's lock, so a client holding
an old version is refused (``StaleVersion``) instead of overwriting a newer edit.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.db import models, transaction

from workspaces.audit import Actor, audit_record, field_changes


class StaleVersion(ValueError):
    """An edit made on an older version than the row's; ``current`` is the row's version."""

    def __init__(self, message: str, *, current: int) -> None:
        super().__init__(message)
        self.current = current


V = TypeVar("V", bound=models.Model)


def locked_at_version(obj: V, expected_version: int | None) -> V:
    """``obj``'s row, locked; ``StaleVersion`` when ``expected_version`` is given and is not the row's."""
    current = type(obj)._default_manager.select_for_update().get(pk=obj.pk)
    version = current.version  # type: ignore[attr-defined]
    if expected_version is not None and expected_version != version:
        what = type(obj)._meta.verbose_name
        raise StaleVersion(f"{what} {obj.pk} is at version {version}, the edit was made on version "
                           f"{expected_version}", current=version)
    return current


def versioned_save(obj: V, *, editable: Sequence[str], now: datetime, actor: Actor | None,
                   expected_version: int | None) -> V:
    """Insert, or update at the expected version; a change to ``editable`` bumps the version. Audited."""
    def values(of: models.Model) -> dict[str, Any]:
        return {name: getattr(of, name) for name in editable}

    row: Any = obj  # every versioned model has ``version`` and ``workspace_id``
    with transaction.atomic():
        if obj.pk is None:
            obj.save()
            audit_record(actor, obj=obj, action="create", now=now, workspace_id=row.workspace_id,
                         version_after=row.version, changes=field_changes({}, values(obj)))
            return obj
        current: Any = locked_at_version(obj, expected_version)
        changes = field_changes(values(current), values(obj))
        if changes:
            row.version = current.version + 1
            obj.save()
            audit_record(actor, obj=obj, action="update", now=now, workspace_id=row.workspace_id,
                         version_before=current.version, version_after=row.version, changes=changes)
    return obj
