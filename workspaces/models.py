"""Workspaces own agents (and through them schedules and runs); people are members with a role.

API keys are stored as a SHA-256 hash beside an indexed prefix, never as the
key. The audit trail records every change to an agent, schedule or key,
whoever made it and through whichever entry point.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer (reads)"
    OPERATOR = "operator", "Operator (also triggers, pauses, resumes)"
    ADMIN = "admin", "Admin (also creates, edits, deletes, manages keys)"


# Each role can do everything the roles before it can.
ROLE_ORDER = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)


class Workspace(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    event_depth_limit = models.PositiveSmallIntegerField(
        default=8, help_text="Reactive hops a chain of events may take before its runs are skipped.")
    min_interval_seconds = models.PositiveIntegerField(
        default=60, help_text="Shortest gap between two ticks of a recurring schedule made by a person or "
                              "an API key (agents have their own, below).")
    # Guardrails on schedules agents make with their ``schedule`` tool (docs/autonomy.md).
    agent_min_delay_seconds = models.PositiveIntegerField(
        default=60, help_text="Shortest delay of an agent's one-shot schedule (wakeup).")
    agent_max_delay_seconds = models.PositiveIntegerField(
        default=30 * 86400, help_text="Longest delay of an agent's one-shot schedule.")
    agent_min_interval_seconds = models.PositiveIntegerField(
        default=900, help_text="Shortest interval of an agent's recurring schedule.")
    agent_schedule_ttl_seconds = models.PositiveIntegerField(
        default=7 * 86400, help_text="An agent's recurring schedule ends this long after it is made, "
                                     "unless a person renews it.")
    agent_max_per_session = models.PositiveIntegerField(
        default=10, help_text="Active schedules an agent may have made in one session.")
    agent_max_per_agent = models.PositiveIntegerField(
        default=50, help_text="Active schedules one agent may have made.")
    chain_max_wakeups = models.PositiveIntegerField(
        default=100, help_text="Self-wakeups one causal chain may take; beyond, skipped: chain_budget.")
    chain_max_age_seconds = models.PositiveIntegerField(
        default=7 * 86400, help_text="How long a chain may keep waking itself; beyond, skipped: chain_budget.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


DEFAULT_SLUG = "default"


def default_workspace() -> int:
    """The id of the ``default`` workspace, made on first use: a single-team install never names one."""
    workspace, _ = Workspace.objects.get_or_create(slug=DEFAULT_SLUG, defaults={"name": "Default"})
    return workspace.pk


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="membership_one_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


class ApiKey(models.Model):
    """``tw_<prefix>_<secret>``: found by its prefix, checked against the hash of the whole key."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, help_text="SHA-256 of the whole key, hex.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"tw_{self.prefix}_… ({self.name})"


class AuditEntry(models.Model):
    """One change, from any entry point: who, what, when, and the versions around it."""

    at = models.DateTimeField()
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=10, help_text="api, admin, command or system.")
    object_type = models.CharField(max_length=20)
    object_id = models.BigIntegerField()
    object_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=20)
    version_before = models.PositiveIntegerField(null=True, blank=True)
    version_after = models.PositiveIntegerField(null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [before, after]}")
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_type", "object_id", "-at"], name="audit_object_idx")]
        constraints = [models.CheckConstraint(condition=~Q(source=""), name="audit_has_source")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.object_id} by {self.user_id or self.source}"
