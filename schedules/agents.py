"""Writes to agents: every entry point (API, admin, commands) saves and deletes through here, audited.

An agent's ``version`` moves with every change, so a client holding an old
one is refused (``StaleVersion``) instead of overwriting a newer edit. The
compare and the write happen under the row's lock.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F

from workspaces.audit import Actor, audit_record

from .models import Agent, Schedule
from .versioned import locked_at_version, versioned_save

EDITABLE = ("name", "adapter", "config", "is_active")


def _values(agent: Agent) -> dict[str, Any]:
    return {name: getattr(agent, name) for name in EDITABLE}


def agent_save(agent: Agent, *, now: datetime, actor: Actor | None = None,
               expected_version: int | None = None) -> Agent:
    """Create or update a valid agent (``full_clean``, the adapter's config check included)."""
    agent.full_clean()
    return versioned_save(agent, editable=EDITABLE, now=now, actor=actor, expected_version=expected_version)


def agent_delete(agent: Agent, *, now: datetime, actor: Actor | None = None,
                 expected_version: int | None = None) -> None:
    """Soft delete, with its schedules: the ledger keeps pointing at both, nothing fires again."""
    with transaction.atomic():
        current = locked_at_version(agent, expected_version)
        Agent.objects.filter(pk=agent.pk).update(deleted_at=now, is_active=False, version=F("version") + 1)
        Schedule.objects.live().filter(agent=agent).update(deleted_at=now, next_fire_at=None, next_tick_at=None)
        audit_record(actor, obj=current, action="delete", now=now, workspace_id=current.workspace_id,
                     version_before=current.version, version_after=current.version + 1)
    agent.refresh_from_db()
