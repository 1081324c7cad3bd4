"""Writes to subscriptions. The admin, the API and commands call these; each change is audited.

A definition edit bumps ``version`` (``If-Match`` compares it) and applies to
events routed after it: an event already routed keeps its one route and run
(the identity is the pair, not the version), so an edit never re-runs it.
"""
from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from core.inputs import TemplateError, template_variables
from schedules.models import ConcurrencyScope, OverlapPolicy
from schedules.versioned import locked_at_version
from workspaces.audit import Actor, audit_record, field_changes

from ..matching import SubscriptionInvalid, event_type_check, match_check, path_check
from ..models import BreakerState, SessionKeyMode, Subscription
from .breaker import breaker_reset

# What a person edits; a change to any of them is a new version.
DEFINITION_FIELDS = (
    "name", "agent", "event_type", "match", "input_template", "session_mode", "session_key", "overlap_policy",
    "concurrency_scope", "max_concurrent", "timeout_seconds", "max_attempts", "retry_backoff_seconds",
    "retry_backoff_max_seconds", "completion_url", "allow_self_trigger", "debounce_seconds", "breaker_limit",
    "breaker_window_seconds", "breaker_cooldown_seconds",
)
# Kept from the locked row on an edit: state that only the router and the services move.
RUNTIME_FIELDS = ("breaker_state", "held_at", "paused", "paused_reason", "deleted_at", "version", "created_by")


def _audited(subscription: Subscription) -> dict[str, object]:
    return {name: subscription.serializable_value(name) for name in DEFINITION_FIELDS}


def subscription_validate(subscription: Subscription) -> None:
    """Every check a save makes (``full_clean`` and the routing rules); ``ValidationError`` by field."""
    subscription.full_clean()
    subscription_check_routing(subscription)


def subscription_check_routing(subscription: Subscription) -> None:
    """The routing rules alone (a form runs them beside its own field checks); ``ValidationError`` by field."""
    try:
        _check_routing(subscription)
    except SubscriptionInvalid as error:
        raise ValidationError({error.field: str(error)}) from error


def _check_routing(subscription: Subscription) -> None:
    event_type_check(subscription.event_type)
    match_check(subscription.match)
    try:
        template_variables(subscription.input_template, event=True)
    except TemplateError as error:
        raise SubscriptionInvalid("input_template", str(error)) from error
    if subscription.session_mode == SessionKeyMode.KEYED:
        if not subscription.session_key:
            raise SubscriptionInvalid("session_key", "required when session_mode is keyed (e.g. data.chat_id)")
        path_check("session_key", subscription.session_key)
    _check_choice("overlap_policy", subscription.overlap_policy, OverlapPolicy.values)
    _check_choice("concurrency_scope", subscription.concurrency_scope, ConcurrencyScope.values)
    for name in ("max_concurrent", "timeout_seconds", "max_attempts", "breaker_limit", "breaker_window_seconds"):
        if getattr(subscription, name) < 1:
            raise SubscriptionInvalid(name, "must be at least 1")
    if subscription.agent.workspace_id != subscription.workspace_id:
        raise SubscriptionInvalid("agent", f"agent {subscription.agent} belongs to another workspace")
    if subscription.agent.deleted_at is not None:
        raise SubscriptionInvalid("agent", f"agent {subscription.agent} is deleted")


def _check_choice(field: str, value: str, allowed: list[str]) -> None:
    if value not in allowed:
        raise SubscriptionInvalid(field, f"{value!r} is not one of {', '.join(allowed)}")


def subscription_save(subscription: Subscription, *, now: datetime, expected_version: int | None = None,
                      actor: Actor | None = None) -> Subscription:
    """Create or update a valid subscription; a definition change bumps ``version`` (``StaleVersion`` if stale)."""
    subscription_validate(subscription)
    with transaction.atomic():
        if subscription.pk is None:
            subscription.save()
            _audit(actor, subscription, "create", now=now, before={}, version_before=None)
            return subscription
        current = _locked(subscription, expected_version)
        for name in RUNTIME_FIELDS:
            setattr(subscription, name, getattr(current, name))
        before = _audited(current)
        if field_changes(before, _audited(subscription)):
            subscription.version = current.version + 1
            _audit(actor, subscription, "update", now=now, before=before, version_before=current.version)
        subscription.save()
    return subscription


def _locked(subscription: Subscription, expected_version: int | None) -> Subscription:
    return locked_at_version(subscription, expected_version)


def _audit(actor: Actor | None, subscription: Subscription, action: str, *, now: datetime,
           before: dict[str, object], version_before: int | None, detail: str = "") -> None:
    changes = field_changes(before, _audited(subscription)) if before or action == "create" else {}
    audit_record(actor, obj=subscription, action=action, now=now, workspace_id=subscription.workspace_id,
                 version_before=version_before, version_after=subscription.version, changes=changes,
                 detail=detail)


def _set(subscription: Subscription, action: str, *, now: datetime, actor: Actor | None,
         expected_version: int | None, detail: str = "", **fields: object) -> Subscription:
    """One state change (pause, resume, delete, release): locked, versioned, audited."""
    with transaction.atomic():
        current = _locked(subscription, expected_version)
        Subscription.objects.filter(id=subscription.id).update(version=F("version") + 1, **fields)
        for name, value in fields.items():
            setattr(subscription, name, value)
        subscription.version = current.version + 1
        _audit(actor, subscription, action, now=now, before={}, version_before=current.version, detail=detail)
    return subscription


def subscription_pause(subscription: Subscription, *, reason: str = "", now: datetime, actor: Actor | None = None,
                       expected_version: int | None = None) -> Subscription:
    """Events routed while paused do not match it (they are recorded no_match, or go to other subscriptions)."""
    return _set(subscription, "pause", now=now, actor=actor, expected_version=expected_version, detail=reason,
                paused=True, paused_reason=reason[:200])


def subscription_resume(subscription: Subscription, *, now: datetime, actor: Actor | None = None,
                        expected_version: int | None = None) -> Subscription:
    return _set(subscription, "resume", now=now, actor=actor, expected_version=expected_version,
                paused=False, paused_reason="")


def subscription_delete(subscription: Subscription, *, now: datetime, actor: Actor | None = None,
                        expected_version: int | None = None) -> Subscription:
    """Soft delete: its routes and runs stay in the ledger; its name is free again."""
    return _set(subscription, "delete", now=now, actor=actor, expected_version=expected_version, deleted_at=now)


def subscription_release(subscription: Subscription, *, actor: Actor | None = None, now: datetime,
                         expected_version: int | None = None) -> Subscription:
    """Close a held (or probing) breaker by hand: matches run again, counted from zero."""
    was = subscription.breaker_state
    released = _set(subscription, "release", now=now, actor=actor, expected_version=expected_version,
                    detail=f"breaker {was} -> closed", breaker_state=BreakerState.CLOSED)
    transaction.on_commit(lambda: breaker_reset(subscription.id))
    return released
