"""A waitpoint: one parked run, what it waits for, and how the wait ended.

One kind does not park: a background run's reply (``parks_run`` false) is a
``run`` wait that its caller's session holds while the run works elsewhere;
its completion is the same conditional update and the same resume.

The row and the run's ``waiting`` state are written in one transaction
(``triggers.waits``): a run is never waiting without its waitpoint, and a
waitpoint never outlives a park that did not commit. A waitpoint leaves
``waiting`` once, by a conditional update (completed, timed out or
cancelled); its resume run is unique per waitpoint in the ledger.
"""
from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

# The longest a run may stay parked (the bound; the tool refuses more).
MAX_WAIT_SECONDS = 30 * 24 * 3600


class WaitKind(models.TextChoices):
    TOKEN = "token", "Token (completed through the API or the callback URL)"
    EVENT = "event", "Event (a matching event of the workspace)"
    TIMER = "timer", "Timer"
    RUN = "run", "Run (another run's end)"


class WaitState(models.TextChoices):
    WAITING = "waiting", "Waiting"
    COMPLETED = "completed", "Completed"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"


class Waitpoint(models.Model):
    # Random, so a waitpoint's URL names nothing guessable; the callback is signed besides.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="waitpoints",
                            help_text="The run that parked here.")
    agent = models.ForeignKey("schedules.Agent", on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    session_id = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=10, choices=WaitKind.choices)
    event_type = models.CharField(max_length=200, blank=True, help_text="Event waits: a type or a prefix.*.")
    match = models.JSONField(default=dict, blank=True, help_text="Event waits: payload equalities on dotted paths.")
    resume_at = models.DateTimeField(null=True, blank=True, help_text="Timer waits: when the run resumes.")
    # Run waits: the run whose end completes this wait. Retention may delete it first (the wait then times out).
    watched_run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    db_index=False, help_text="Run waits: the run whose end completes the wait.")
    parks_run = models.BooleanField(default=True, help_text=(
        "False for a background run's reply: the waitpoint's run did not park, its session just receives "
        "the result as a resume."))
    timeout_at = models.DateTimeField(help_text="When the wait gives up and resumes with ok false.")
    reason = models.CharField(max_length=500, blank=True, help_text="Why the run waits, in the agent's words.")
    state = models.CharField(max_length=10, choices=WaitState.choices, default=WaitState.WAITING)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.CharField(max_length=200, blank=True,
                                    help_text="api key N (user M), callback, event N, timer or timeout.")
    payload = models.JSONField(null=True, blank=True, help_text="What the completion carried.")
    resume_run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(kind="event") | ~Q(event_type=""), name="waitpoint_event_has_type"),
            models.CheckConstraint(condition=~Q(kind="timer") | Q(resume_at__isnull=False),
                                   name="waitpoint_timer_has_time"),
        ]
        indexes = [
            # The sweeper: open waits by deadline, and due timers.
            models.Index(fields=["timeout_at"], name="waitpoint_timeout_idx", condition=Q(state="waiting")),
            models.Index(fields=["resume_at"], name="waitpoint_timer_idx",
                         condition=Q(state="waiting", kind="timer")),
            # The router: open event waits of a workspace by type.
            models.Index(fields=["workspace", "event_type"], name="waitpoint_event_idx",
                         condition=Q(state="waiting", kind="event")),
            # A run's end: the open waits on it.
            models.Index(fields=["watched_run"], name="waitpoint_run_idx", condition=Q(state="waiting", kind="run")),
        ]

    def __str__(self) -> str:
        return f"waitpoint {self.id} ({self.kind}, {self.state})"
