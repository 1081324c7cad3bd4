"""The run ledger: one row per start of an agent run, whatever asked for it.

PostgreSQL owns the guarantees: ``run_one_per_tick`` makes each scheduled tick
exactly one row; ``run_unique_idempotency_key`` makes each key one row; state
moves only by compare-and-set updates guarded by ``fencing_token``.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class RunState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    DEAD = "dead", "Dead (dead-letter queue)"
    CANCELLED = "cancelled", "Cancelled"
    UNKNOWN = "unknown", "Unknown outcome"
    SKIPPED = "skipped", "Skipped"
    # The attempt ended parked on a waitpoint: the worker is free, and the
    # waitpoint's completion (or timeout) starts a resume run in the same session.
    WAITING = "waiting", "Waiting (parked on a waitpoint)"


# States a run does not leave by itself (a replay moves dead, unknown and failed runs back).
TERMINAL_STATES = (RunState.SUCCEEDED, RunState.FAILED, RunState.DEAD, RunState.CANCELLED,
                   RunState.UNKNOWN, RunState.SKIPPED)
# The ends that count as a failure (a schedule's streak, success rates).
FAILURE_STATES = (RunState.FAILED, RunState.DEAD, RunState.UNKNOWN)


class Trigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    EVENT = "event", "Event"
    WAKEUP = "wakeup", "Wakeup"
    CATCHUP = "catchup", "Catch-up"
    REPLAY = "replay", "Replay"
    RESUME = "resume", "Resume"


# Triggers whose tick is a point of the schedule's timeline: one row each.
TIMELINE_TRIGGERS = (Trigger.SCHEDULE, Trigger.CATCHUP)


class SkipReason(models.TextChoices):
    OVERLAP = "overlap", "Overlap"
    PAUSED = "paused", "Paused"
    DST_GAP = "dst_gap", "Local time does not exist (DST gap)"
    MISSED = "missed", "Missed during downtime"
    UNAUTHORIZED = "unauthorized", "Unauthorized"
    EXPIRED = "expired", "Expired"
    INACTIVE_AGENT = "inactive_agent", "Agent inactive"
    # The loop breakers of reactive runs (events, wakeups): each a row, never a silent drop.
    SELF_TRIGGER = "self_trigger", "The agent's own event (self-trigger not allowed)"
    DEPTH_EXCEEDED = "depth_exceeded", "Reactive depth limit exceeded"
    BREAKER_HELD = "breaker_held", "Subscription held by its rate breaker"
    DUPLICATE_PAYLOAD = "duplicate_payload", "Same payload within the debounce window"
    CHAIN_BUDGET = "chain_budget", "Chain's self-wakeup budget spent"


class ErrorCategory(models.TextChoices):
    TIMEOUT = "timeout", "Timeout"
    AGENT_ERROR = "agent_error", "Agent error"
    CAPACITY = "capacity", "Capacity"
    UNAUTHORIZED = "unauthorized", "Unauthorized"
    CRASHED = "crashed", "Crashed"
    CONFIG = "config", "Configuration"


class RunQuerySet(models.QuerySet["Run"]):
    def fenced(self, run_id: int, token: int, state: str = "running") -> RunQuerySet:
        """The run, only while it is in ``state`` under attempt token ``token``: every transition's guard."""
        return self.filter(id=run_id, state=state, fencing_token=token)


class Run(models.Model):
    schedule = models.ForeignKey("schedules.Schedule", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="runs")
    agent = models.ForeignKey("schedules.Agent", on_delete=models.PROTECT, related_name="runs")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    tick_at = models.DateTimeField(help_text="The tick's identity (UTC); for on-demand runs, the request time.")
    schedule_version = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.PENDING)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)
    run_number = models.PositiveIntegerField(default=0, help_text="The schedule's count of started runs.")
    missed_count = models.PositiveIntegerField(
        default=0, help_text="For a summary row: how many ticks it stands for.")
    idempotency_key = models.CharField(max_length=64)

    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    not_before = models.DateTimeField(null=True, blank=True, help_text="A retry waits here, not in the broker.")
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    fencing_token = models.PositiveBigIntegerField(default=0)
    published_at = models.DateTimeField(null=True, blank=True, help_text="When the execute message was sent.")
    buffered = models.BooleanField(default=False, help_text="Waiting for its overlap scope to free up.")
    cancel_requested_at = models.DateTimeField(null=True, blank=True,
                                               help_text="A newer run asked this one to stop (cancel_previous).")

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lateness_ms = models.IntegerField(null=True, blank=True, help_text="Dispatch time minus tick_at.")

    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    session_id = models.CharField(max_length=64, blank=True)
    input = models.TextField(blank=True)

    # What the worker needs, copied from the schedule (or the trigger) at dispatch,
    # so a run without a schedule (an event, a wakeup, a resume) executes the same
    # way, and an edit made while a run is in flight does not change that run.
    timeout_seconds = models.PositiveIntegerField(default=300)
    retry_backoff_seconds = models.PositiveIntegerField(default=10)
    retry_backoff_max_seconds = models.PositiveIntegerField(default=600)
    overlap_policy = models.CharField(max_length=20, default="skip")
    max_concurrent = models.PositiveIntegerField(default=1)
    concurrency_scope = models.CharField(max_length=10, default="schedule")
    session_mode = models.CharField(max_length=12, default="new")
    # Who asked for a manual run (the admin's Run now, the API's trigger); empty for the clock.
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    # Causation: who started whom, so a loop across agents and systems is counted
    # (docs/events.md). A clock tick, a person or an outside event starts a chain.
    chain_id = models.CharField(max_length=32, blank=True, help_text="The root of this run's causal chain.")
    parent_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                                   help_text="The run whose output or request started this one.")
    event_depth = models.PositiveSmallIntegerField(default=0, help_text="Reactive hops from the chain's root.")
    wakeup_count = models.PositiveIntegerField(default=0, help_text="Self-wakeups spent by the chain so far.")
    actor = models.ForeignKey("schedules.Agent", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="The agent whose run emitted the event behind this run.")
    completion_url = models.URLField(max_length=500, blank=True,
                                     help_text="Where the run's outcome is posted when it ends (signed).")
    # ``message``: the input is delivered as it is, with no LLM call (a reminder an
    # agent scheduled for a person); ``task``: the agent runs it.
    payload_type = models.CharField(max_length=10, default="task", help_text="task: the agent runs the input; "
                                    "message: the input is delivered as it is, with no agent call.")
    output = models.JSONField(null=True, blank=True)
    error_category = models.CharField(max_length=20, choices=ErrorCategory.choices, blank=True)
    error_message = models.TextField(blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-tick_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "tick_at"],
                                    condition=Q(trigger__in=list(TIMELINE_TRIGGERS)),
                                    name="run_one_per_tick"),
            models.UniqueConstraint(fields=["idempotency_key"], name="run_unique_idempotency_key"),
            models.CheckConstraint(condition=~Q(state="skipped") | ~Q(skip_reason=""),
                                   name="run_skipped_has_reason"),
        ]
        indexes = [
            models.Index(fields=["schedule", "-tick_at"], name="run_history_idx"),
            # Outbox: committed, pending, never published.
            models.Index(fields=["created_at"], name="run_unpublished_idx",
                         condition=Q(state="pending", published_at__isnull=True)),
            # Published runs still pending (the sweeper republishes stale ones).
            models.Index(fields=["published_at"], name="run_pending_published_idx", condition=Q(state="pending")),
            # Retries waiting in the database.
            models.Index(fields=["not_before"], name="run_retry_due_idx",
                         condition=Q(state="pending", not_before__isnull=False)),
            models.Index(fields=["chain_id"], name="run_chain_idx", condition=~Q(chain_id="")),
            # The run list and the control room's 24-hour figures read the newest runs across schedules.
            models.Index(fields=["-tick_at", "-id"], name="run_tick_idx"),
            # The dead-letter and unknown queues: counted on every dashboard, pulse and /metrics scrape.
            models.Index(fields=["state"], name="run_dead_letter_idx", condition=Q(state__in=["dead", "unknown"])),
            # Reaper: running runs by lease expiry.
            models.Index(fields=["lease_expires_at"], name="run_lease_idx", condition=Q(state="running")),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.trigger} {self.tick_at:%Y-%m-%d %H:%M:%S}Z, {self.state})"


class CallState(models.TextChoices):
    INTENT = "intent", "Sent, no outcome yet"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class AgentCall(models.Model):
    """The side-effect ledger: one row per attempt that reached for the agent.

    Written as intent before the call and completed after it. An intent left
    without an outcome means the agent may have acted: the run becomes
    ``unknown`` unless the adapter deduplicates by idempotency key.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="calls")
    attempt = models.PositiveIntegerField()
    fencing_token = models.PositiveBigIntegerField()
    idempotency_key = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=CallState.choices, default=CallState.INTENT)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "attempt"], name="agentcall_one_per_attempt")]

    def __str__(self) -> str:
        return f"call {self.run_id}#{self.attempt} ({self.state})"
