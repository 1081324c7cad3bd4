"""The event ledger: webhook sources, the events they delivered, and the subscriptions that route them.

PostgreSQL owns the guarantees: ``event_once_per_source`` makes each delivery
one row however many times the sender retries; ``route_once_per_subscription``
makes each (subscription, event) one route and one run. Secrets are never
stored here: a source names the environment variables that hold them.
See docs/events.md.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from workspaces.models import default_workspace


class SourceKind(models.TextChoices):
    STANDARD = "standard", "Standard Webhooks"
    GITHUB = "github", "GitHub"
    HMAC = "hmac", "HMAC-SHA256 of the body"


class WebhookSource(models.Model):
    """One sender. ``secrets``: ``[{"env": "NAME", "retire_at": ISO-8601 | null}, …]`` (rotation)."""

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.PROTECT, related_name="sources",
                                  default=default_workspace)
    slug = models.SlugField(max_length=100, unique=True, help_text="The URL's last part: /api/v1/hooks/<slug>.")
    kind = models.CharField(max_length=10, choices=SourceKind.choices, default=SourceKind.STANDARD)
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    secrets = models.JSONField(default=list, blank=True,
                               help_text='Environment variables holding the secrets: [{"env": "NAME", '
                                         '"retire_at": "2027-01-01T00:00:00Z" or null}]. Never the secret itself.')
    tolerance_seconds = models.PositiveIntegerField(default=300,
                                                    help_text="How far a signed timestamp may be from now.")
    body_limit_bytes = models.PositiveIntegerField(default=256 * 1024)
    require_json = models.BooleanField(default=True)
    # ``hmac`` kind: where the signature and the delivery id travel.
    signature_header = models.CharField(max_length=100, blank=True, default="X-Signature")
    id_header = models.CharField(max_length=100, blank=True,
                                 help_text="Header carrying the delivery id; empty: a hash of the body.")
    type_field = models.CharField(
        max_length=100, blank=True, default="type",
        help_text="Dotted path of the event type in the body (GitHub: the X-GitHub-Event header).")
    rate_per_minute = models.PositiveIntegerField(
        default=600, help_text="Accepted deliveries per minute (burst: the same).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class RoutingOutcome(models.TextChoices):
    PENDING = "pending", "Not routed yet"
    ROUTED = "routed", "Routed"
    NO_MATCH = "no_match", "Matched no subscription"
    FAILED = "failed", "Routing failed"


class InboundEvent(models.Model):
    """One delivered event, stored once per ``(source, event_id)``; first-party events have no source."""

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.PROTECT, related_name="events")
    source = models.ForeignKey(WebhookSource, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="events", help_text="Empty: posted to /api/v1/events with an API key.")
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=200, help_text="Dot-delimited, e.g. github.push or deploy.finished.")
    subject = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    payload = models.JSONField(default=dict)
    payload_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical payload (debounce).")
    headers = models.JSONField(default=dict, blank=True, help_text="The allow-listed request headers.")
    secret_env = models.CharField(max_length=100, blank=True, help_text="Which secret's signature matched.")
    posted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", help_text="The API key's user, for a first-party event.")
    # Causation, from the chain headers or from the run that emitted the event.
    chain_id = models.CharField(max_length=32, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    actor = models.ForeignKey("schedules.Agent", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    parent_run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=10, choices=RoutingOutcome.choices, default=RoutingOutcome.PENDING)
    routed_at = models.DateTimeField(null=True, blank=True)
    routing_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            # NULLS NOT DISTINCT: first-party events (no source) are unique per workspace too.
            models.UniqueConstraint(fields=["workspace", "source", "event_id"], nulls_distinct=False,
                                    name="event_once_per_source"),
        ]
        indexes = [
            models.Index(fields=["received_at"], name="event_received_idx"),
            models.Index(fields=["received_at"], name="event_unrouted_idx", condition=Q(outcome="pending")),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} ({self.type})"


class BreakerState(models.TextChoices):
    CLOSED = "closed", "Closed (running)"
    HELD = "held", "Held (flood)"
    PROBING = "probing", "Half-open (one probe run)"


class SessionKeyMode(models.TextChoices):
    NEW = "new", "New session per event"
    KEYED = "keyed", "One session per key taken from the event"


class Subscription(models.Model):
    """Routes events of one type (exact or ``prefix.*``), optionally matched on payload fields, to an agent."""

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.PROTECT, related_name="subscriptions",
                                  default=default_workspace)
    agent = models.ForeignKey("schedules.Agent", on_delete=models.PROTECT, related_name="subscriptions")
    name = models.SlugField(max_length=100)
    event_type = models.CharField(max_length=200, help_text="Exact (deploy.finished) or a prefix (github.*).")
    match = models.JSONField(default=dict, blank=True,
                             help_text='Dotted-path equalities over the event, e.g. {"data.repo": "web"}.')
    input_template = models.TextField(blank=True, help_text="{{event.type}}, {{event.id}}, {{event.data.…}}, …")
    session_mode = models.CharField(max_length=10, choices=SessionKeyMode.choices, default=SessionKeyMode.NEW)
    session_key = models.CharField(max_length=200, blank=True,
                                   help_text="Dotted path in the event whose value names the session (data.chat_id).")
    overlap_policy = models.CharField(max_length=20, default="buffer")
    concurrency_scope = models.CharField(max_length=10, default="session")
    max_concurrent = models.PositiveIntegerField(default=1)
    timeout_seconds = models.PositiveIntegerField(default=300)
    max_attempts = models.PositiveIntegerField(default=3)
    retry_backoff_seconds = models.PositiveIntegerField(default=10)
    retry_backoff_max_seconds = models.PositiveIntegerField(default=600)
    completion_url = models.URLField(max_length=500, blank=True)
    allow_self_trigger = models.BooleanField(default=False)
    debounce_seconds = models.PositiveIntegerField(
        default=60, help_text="Identical payloads within this window run once.")
    # The rate breaker: more than ``breaker_limit`` runs in ``breaker_window_seconds`` holds the subscription.
    breaker_limit = models.PositiveIntegerField(default=20)
    breaker_window_seconds = models.PositiveIntegerField(default=600)
    breaker_cooldown_seconds = models.PositiveIntegerField(default=600)
    breaker_state = models.CharField(max_length=10, choices=BreakerState.choices, default=BreakerState.CLOSED)
    held_at = models.DateTimeField(null=True, blank=True)
    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], condition=Q(deleted_at__isnull=True),
                                    name="subscription_unique_name_per_workspace"),
        ]

    def __str__(self) -> str:
        return self.name


class Route(models.Model):
    """One (subscription, event) pair: the run it started, or the run row that records why it did not."""

    event = models.ForeignKey(InboundEvent, on_delete=models.CASCADE, related_name="routes")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="routes")
    run = models.OneToOneField("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="route")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event"], name="route_once_per_subscription"),
        ]

    def __str__(self) -> str:
        return f"route {self.event_id} -> {self.subscription_id}"
