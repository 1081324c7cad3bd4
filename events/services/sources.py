"""Writes to webhook sources: the API and the admin save and delete through here, audited.

A source's ``version`` moves with every change; an edit made on an older one
is refused (``StaleVersion``). Its secrets are environment variable names
(with an optional retirement instant), never values: ``secrets_validate``
refuses anything that looks like one.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from schedules.versioned import locked_at_version, versioned_save
from workspaces.audit import Actor, audit_record

from ..models import WebhookSource

EDITABLE = ("slug", "kind", "description", "enabled", "secrets", "tolerance_seconds", "body_limit_bytes",
            "require_json", "signature_header", "id_header", "type_field", "rate_per_minute")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,99}")
MAX_BODY_LIMIT = 10 * 1024 * 1024  # Django refuses larger bodies than DATA_UPLOAD_MAX_MEMORY_SIZE anyway


class SourceInUse(Exception):
    """A source whose events are still in the ledger cannot be deleted; disable it instead."""


def _retire_at_problem(value: object) -> str:
    if value is None:
        return ""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return f"retire_at {value!r} is not an ISO-8601 instant"
    return "" if when.tzinfo is not None else f"retire_at {value!r} needs a UTC offset (…Z)"


def secrets_validate(secrets: Any) -> list[str]:
    """What is wrong with a ``secrets`` list, one message per problem (empty: fine)."""
    if not isinstance(secrets, list):
        return ['must be a list of {"env": "NAME", "retire_at": null or an instant}']
    problems = []
    for position, entry in enumerate(secrets):
        if not isinstance(entry, dict) or set(entry) - {"env", "retire_at"}:
            problems.append(f'[{position}]: only "env" and "retire_at" are allowed')
            continue
        if not ENV_NAME.fullmatch(str(entry.get("env", ""))):
            problems.append(f"[{position}]: env must name an environment variable (A-Z, 0-9, _), "
                            "never hold the secret itself")
        problem = _retire_at_problem(entry.get("retire_at"))
        if problem:
            problems.append(f"[{position}]: {problem}")
    return problems


def source_clean(source: WebhookSource) -> None:
    errors: dict[str, list[str]] = {}
    problems = secrets_validate(source.secrets)
    if problems:
        errors["secrets"] = problems
    if isinstance(source.body_limit_bytes, int) and not 1 <= source.body_limit_bytes <= MAX_BODY_LIMIT:
        errors["body_limit_bytes"] = [f"must be between 1 and {MAX_BODY_LIMIT}"]
    if errors:
        raise ValidationError(errors)
    source.full_clean()


def _values(source: WebhookSource) -> dict[str, Any]:
    return {name: getattr(source, name) for name in EDITABLE}


def source_save(source: WebhookSource, *, now: datetime, actor: Actor | None = None,
                expected_version: int | None = None) -> WebhookSource:
    source_clean(source)
    return versioned_save(source, editable=EDITABLE, now=now, actor=actor, expected_version=expected_version)


def source_delete(source: WebhookSource, *, now: datetime, actor: Actor | None = None,
                  expected_version: int | None = None) -> None:
    try:
        with transaction.atomic():
            current = locked_at_version(source, expected_version)
            audit_record(actor, obj=current, action="delete", now=now, workspace_id=current.workspace_id,
                         version_before=current.version)
            current.delete()
    except ProtectedError:
        raise SourceInUse(f"source {source.slug!r} has events in the ledger; disable it instead "
                          "(they are purged after the retention window)") from None
