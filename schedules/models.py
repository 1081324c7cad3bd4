"""The registry: agents (where a run goes) and schedules (when, and under which policies).

Models are declarative: validation lives in the fields' validators, in
``clean()`` and in the pure ``timing`` and ``inputs`` modules, so the admin,
the API and a shell get the same answer from ``full_clean``; checks that need
the clock are ``services.schedule_validate``. State changes go through
``services``. Bounds and messages: ``docs/registry.md``.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from adapters import AdapterError, adapter_for
from core import inputs, timing
from workspaces.models import default_workspace

from .validators import AT_MOST_A_DAY, DAY, at_least, at_most, storage_errors, validate_instant


class AdapterKind(models.TextChoices):
    ECHO = "echo", "Echo (demo and tests)"
    HTTP = "http", "HTTP agent server"
    OPENAI = "openai", "OpenAI-compatible chat"
    PYTHON = "python", "Python callable"
    MESSAGE = "message", "Plain message"


class RegistryModel(models.Model):
    """``full_clean`` in three steps: what the database would refuse, Django's field checks, ``clean()``.

    ``clean()`` runs even when a field failed (Django's order), so it asks
    ``fields_valid`` before it reads a field: a value that failed its field
    check may be of any type.
    """

    _invalid_fields: frozenset[str] = frozenset()

    class Meta:
        abstract = True

    def clean_fields(self, exclude=None) -> None:
        skipped = set(exclude or ())
        errors: dict = storage_errors(self, exclude=skipped)
        try:
            super().clean_fields(exclude=skipped | set(errors))
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        self._invalid_fields = frozenset(errors)
        if errors:
            raise ValidationError(errors)

    def fields_valid(self, *names: str) -> bool:
        return self._invalid_fields.isdisjoint(names)


class AgentQuerySet(models.QuerySet["Agent"]):
    def live(self) -> AgentQuerySet:
        return self.filter(deleted_at__isnull=True)


class Agent(RegistryModel):
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.PROTECT, related_name="agents",
                                  default=default_workspace)
    name = models.SlugField(max_length=100)
    adapter = models.CharField(max_length=20, choices=AdapterKind.choices, default=AdapterKind.ECHO)
    config = models.JSONField(default=dict, blank=True, help_text="Adapter settings; never secrets.")
    is_active = models.BooleanField(default=True)
    completion_url = models.URLField(
        max_length=500, blank=True,
        help_text="Post each run's outcome here (signed, Standard Webhooks); a schedule's own URL wins.")
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AgentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            # Names are per workspace: a tenant must not learn another's agent names from a refusal.
            models.UniqueConstraint(fields=["workspace", "name"], condition=Q(deleted_at__isnull=True),
                                    name="agent_unique_name_per_workspace"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The adapter's own config check, so every entry point gets the admin's answer."""
        if not self.fields_valid("adapter", "config"):
            return
        if not isinstance(self.config, dict):
            raise ValidationError({"config": "Adapter config must be a JSON object."})
        try:
            adapter = adapter_for(self.adapter)
        except AdapterError as error:
            raise ValidationError({"adapter": f"{error}; one of {', '.join(AdapterKind.values)}."}) from None
        try:
            adapter.validate_config(self.config)
        except AdapterError as error:
            raise ValidationError({"config": str(error)}) from None
        except ValueError as error:
            # The URL parser's own refusal ("Invalid IPv6 URL" for "http://["),
            # which a config check may let through instead of naming the key.
            raise ValidationError({"config": f"config is not usable by the {self.adapter} adapter: "
                                             f"{error}"}) from None


class ScheduleKind(models.TextChoices):
    CRON = "cron", "Cron"
    INTERVAL = "interval", "Interval"
    ONCE = "once", "One-shot"


class IntervalMode(models.TextChoices):
    FIXED_RATE = "fixed_rate", "Fixed rate from the anchor"
    AFTER_COMPLETION = "after_completion", "After the previous run completes"


class DstGap(models.TextChoices):
    SKIP = "skip", "Skip the tick (recorded as skipped: dst_gap)"
    SHIFT = "shift", "Run at the first valid instant after the gap"


class DstFold(models.TextChoices):
    FIRST = "first", "First occurrence"
    LAST = "last", "Last occurrence"
    BOTH = "both", "Both occurrences"


class MissedPolicy(models.TextChoices):
    SKIP = "skip", "Skip missed ticks"
    COALESCE = "coalesce", "Coalesce into one run"
    REPLAY = "replay", "Replay each missed tick"


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "Skip while a run is active"
    BUFFER_ONE = "buffer_one", "Buffer one run"
    BUFFER = "buffer", "Buffer every run, in order"
    ALLOW = "allow", "Allow up to max_concurrent"
    CANCEL_PREVIOUS = "cancel_previous", "Cancel the previous run"


class ConcurrencyScope(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    AGENT = "agent", "Agent"
    SESSION = "session", "Session"


class SessionMode(models.TextChoices):
    NEW = "new", "New session per run"
    PERSISTENT = "persistent", "One persistent session"


class CreatorKind(models.TextChoices):
    """Who made a schedule: a person (admin, command), an API key, or an agent's run (its ``schedule`` tool)."""

    PERSON = "person", "A person"
    API_KEY = "api_key", "An API key"
    AGENT_RUN = "agent_run", "An agent run"


class PayloadType(models.TextChoices):
    TASK = "task", "Task: the agent runs the input"
    MESSAGE = "message", "Message: the input is delivered as it is, with no agent call"


class FinishedReason(models.TextChoices):
    """Why a schedule has nothing left to fire; blank while it has."""

    MAX_RUNS = "max_runs", "Ran max_runs times"
    RUN_AT_PASSED = "run_at_passed", "One-shot instant passed"
    WINDOW_ENDED = "window_ended", "Window ended (end_at)"
    NO_MORE_TICKS = "no_more_ticks", "No further tick"


# Fields whose change alters what or when a schedule fires: editing any of them
# bumps ``version`` (and with it the idempotency keys of future ticks).
DEFINITION_FIELDS = (
    "agent", "kind", "cron", "interval_seconds", "interval_mode", "run_at", "timezone",
    "dst_gap", "dst_fold", "start_at", "end_at", "max_runs", "jitter_seconds",
    "missed_policy", "missed_grace_seconds", "replay_cap", "overlap_policy", "max_concurrent",
    "concurrency_scope", "timeout_seconds", "max_attempts", "retry_backoff_seconds",
    "retry_backoff_max_seconds", "input_template", "session_mode",
)

# The fields that decide whether a schedule of each kind fires at all: a save
# that changes one of them is refused when it leaves nothing to fire
# (``services.schedule_validate``); an unrelated edit of a finished schedule is not.
FIRE_FIELDS = {
    "cron": ("kind", "cron", "timezone", "dst_gap", "dst_fold", "start_at", "end_at", "max_runs"),
    "interval": ("kind", "interval_seconds", "interval_mode", "start_at", "end_at", "max_runs"),
    "once": ("kind", "run_at", "start_at", "end_at", "max_runs"),
}

# A fixed instant to sample a cron's spacing from (jitter validation), so the
# verdict does not depend on the day the schedule is saved.
JITTER_SAMPLE_FROM = datetime(2026, 1, 1, tzinfo=UTC)


# An interval schedule that plans each tick from the previous run's finish: its
# next tick is unknown while a run is in flight (``next_fire_at`` is NULL then).
AWAITS_COMPLETION = Q(kind=ScheduleKind.INTERVAL, interval_mode=IntervalMode.AFTER_COMPLETION)


class ScheduleQuerySet(models.QuerySet):
    def live(self) -> ScheduleQuerySet:
        return self.filter(deleted_at__isnull=True)

    def finished(self) -> ScheduleQuerySet:
        return self.exclude(finished_reason="")

    def due(self, *, now) -> ScheduleQuerySet:
        # Matches the partial index ``schedule_due_idx`` exactly.
        return self.filter(paused=False, deleted_at__isnull=True, next_fire_at__isnull=False,
                           next_fire_at__lte=now)


class Schedule(RegistryModel):
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="schedules")
    name = models.SlugField(max_length=100)
    kind = models.CharField(max_length=10, choices=ScheduleKind.choices, default=ScheduleKind.CRON)
    cron = models.CharField(max_length=200, blank=True, help_text="Five fields or a macro, on local time.")
    interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, validators=[at_least(1), at_most(366 * DAY, "seconds (366 days)")])
    interval_mode = models.CharField(max_length=20, choices=IntervalMode.choices, default=IntervalMode.FIXED_RATE)
    run_at = models.DateTimeField(null=True, blank=True, validators=[validate_instant],
                                  help_text="One-shot fire instant.")
    timezone = models.CharField(max_length=64, default="UTC")
    dst_gap = models.CharField(max_length=10, choices=DstGap.choices, default=DstGap.SKIP)
    dst_fold = models.CharField(max_length=10, choices=DstFold.choices, default=DstFold.FIRST)
    start_at = models.DateTimeField(null=True, blank=True, validators=[validate_instant])
    end_at = models.DateTimeField(null=True, blank=True, validators=[validate_instant])
    max_runs = models.PositiveIntegerField(
        null=True, blank=True, validators=[at_least(1, "a schedule allowed no runs would never fire")])
    jitter_seconds = models.PositiveIntegerField(default=0, validators=[AT_MOST_A_DAY])

    missed_policy = models.CharField(max_length=10, choices=MissedPolicy.choices, default=MissedPolicy.SKIP)
    missed_grace_seconds = models.PositiveIntegerField(default=60, validators=[at_most(7 * DAY, "seconds (7 days)")])
    replay_cap = models.PositiveIntegerField(default=100, validators=[at_most(10_000)])
    overlap_policy = models.CharField(max_length=20, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP)
    max_concurrent = models.PositiveIntegerField(default=1, validators=[at_least(1), at_most(1000)])
    concurrency_scope = models.CharField(max_length=10, choices=ConcurrencyScope.choices,
                                         default=ConcurrencyScope.SCHEDULE)
    timeout_seconds = models.PositiveIntegerField(default=300, validators=[at_least(1), AT_MOST_A_DAY])
    max_attempts = models.PositiveIntegerField(default=3, validators=[at_least(1), at_most(100)])
    retry_backoff_seconds = models.PositiveIntegerField(default=10, validators=[AT_MOST_A_DAY])
    retry_backoff_max_seconds = models.PositiveIntegerField(default=600, validators=[AT_MOST_A_DAY])
    input_template = models.TextField(blank=True)
    session_mode = models.CharField(max_length=12, choices=SessionMode.choices, default=SessionMode.NEW)
    session_id = models.CharField(max_length=64, blank=True, help_text="The persistent session's id.")
    completion_url = models.URLField(
        max_length=500, blank=True, help_text="Post each run's outcome here (signed, Standard Webhooks).")
    failure_limit = models.PositiveIntegerField(
        default=5, validators=[at_most(1000)],
        help_text="Pause after this many consecutive failures (0 = never).")

    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=200, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_tick_at = models.DateTimeField(null=True, blank=True, editable=False,
                                        help_text="Nominal instant (identity) of the next tick.")
    next_fire_at = models.DateTimeField(null=True, blank=True, editable=False,
                                        help_text="When beat fires the next tick (tick + jitter).")
    last_tick_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set together when the plan has nothing left to fire; cleared when an
    # edit or a resume gives it a tick again.
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_reason = models.CharField(max_length=20, choices=FinishedReason.choices, blank=True, editable=False)
    run_count = models.PositiveIntegerField(default=0, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Origin (docs/autonomy.md): who made the schedule, and for one an agent made
    # with its ``schedule`` tool, the run that asked (an id, not a key: the
    # ledger's retention may delete the run, the schedule still says where it came from).
    creator_kind = models.CharField(max_length=10, choices=CreatorKind.choices, default=CreatorKind.PERSON,
                                    editable=False)
    created_by_key = models.ForeignKey("workspaces.ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", editable=False)
    origin_run_id = models.BigIntegerField(null=True, blank=True, editable=False,
                                           help_text="The agent run that created this schedule.")
    origin_agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     editable=False)
    origin_session_id = models.CharField(max_length=64, blank=True, editable=False)
    # The origin run's chain: a wakeup's run continues it (docs/autonomy.md, "Chain budget").
    origin_chain_id = models.CharField(max_length=32, blank=True, editable=False)
    origin_wakeup_count = models.PositiveIntegerField(default=0, editable=False)
    origin_chain_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    # An idempotency key for the request that created it: a retried tool call finds this row.
    origin_key = models.CharField(max_length=64, blank=True, editable=False)
    reason = models.CharField(max_length=500, blank=True, editable=False,
                              help_text="Why the schedule exists (shown to people).")
    process_handle = models.CharField(
        max_length=200, blank=True, editable=False,
        help_text="A process this schedule watches: when it ends, the schedule is cancelled.")
    payload_type = models.CharField(max_length=10, choices=PayloadType.choices, default=PayloadType.TASK,
                                    editable=False)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["agent__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "name"], condition=Q(deleted_at__isnull=True),
                                    name="schedule_unique_name_per_agent"),
            models.CheckConstraint(condition=~Q(kind="cron") | ~Q(cron=""), name="schedule_cron_has_expr"),
            models.CheckConstraint(condition=~Q(kind="interval") | Q(interval_seconds__gt=0),
                                   name="schedule_interval_positive"),
            models.CheckConstraint(condition=~Q(kind="once") | Q(run_at__isnull=False),
                                   name="schedule_once_has_run_at"),
            models.UniqueConstraint(fields=["origin_key"], condition=~Q(origin_key=""),
                                    name="schedule_unique_origin_key"),
            models.CheckConstraint(condition=Q(finished_reason="", finished_at__isnull=True)
                                   | (~Q(finished_reason="") & Q(finished_at__isnull=False)),
                                   name="schedule_finished_has_reason_and_time"),
        ]
        indexes = [
            # The beat's due query touches only what is due: its cost follows
            # the number of due ticks, not the number of schedules.
            models.Index(fields=["next_fire_at"], name="schedule_due_idx",
                         condition=Q(paused=False, deleted_at__isnull=True, next_fire_at__isnull=False)),
            models.Index(fields=["process_handle"], name="schedule_process_idx",
                         condition=~Q(process_handle="") & Q(deleted_at__isnull=True)),
            models.Index(fields=["origin_session_id"], name="schedule_origin_session_idx",
                         condition=Q(deleted_at__isnull=True, creator_kind="agent_run")),
            # A run's page and its chain: the schedules it created, live or cancelled.
            models.Index(fields=["origin_run_id"], name="schedule_origin_run_idx",
                         condition=Q(origin_run_id__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.agent.name}/{self.name}" if self.agent_id else self.name

    @property
    def is_wakeup(self) -> bool:
        """A one-shot an agent's run asked for: its run has trigger ``wakeup`` and continues the run's chain."""
        return self.origin_run_id is not None and self.kind == ScheduleKind.ONCE

    @property
    def awaits_completion(self) -> bool:
        """Whether each tick waits for the previous run to finish (see ``AWAITS_COMPLETION``)."""
        return self.kind == ScheduleKind.INTERVAL and self.interval_mode == IntervalMode.AFTER_COMPLETION

    @property
    def interval(self) -> timedelta | None:
        return timedelta(seconds=self.interval_seconds) if self.interval_seconds else None

    def aim_at(self, tick: timing.Tick | None, *, awaiting_run: bool = False) -> None:
        """Point ``next_tick_at``/``next_fire_at`` at ``tick``.

        None means nothing is left to fire: the schedule is finished, and
        ``finished_reason`` says why (the service that saves it stamps
        ``finished_at``). Not so with ``awaiting_run``: an after-completion
        interval has no next tick while its run is in flight, and plans one
        when that run ends.
        """
        self.next_tick_at = tick.at if tick else None
        self.next_fire_at = tick.fire_at if tick else None
        if tick is not None or awaiting_run:
            self.finished_reason, self.finished_at = "", None
        elif not self.finished_reason:
            self.finished_reason = self._exhausted_reason()

    def _exhausted_reason(self) -> str:
        if self.max_runs is not None and self.run_count >= self.max_runs:
            return FinishedReason.MAX_RUNS
        if self.kind == ScheduleKind.ONCE:
            return FinishedReason.RUN_AT_PASSED
        if self.end_at is not None:
            return FinishedReason.WINDOW_ENDED
        return FinishedReason.NO_MORE_TICKS  # e.g. a cron past the engine's last year

    def plan(self, *, now: datetime | None = None) -> timing.Plan:
        """The pure timing plan this schedule fires on.

        An interval is anchored at ``start_at``, else at ``created_at``; an
        interval not saved yet has neither, and is anchored at ``now``.
        """
        return timing.Plan(
            spec=self._spec(anchor=self.start_at or self.created_at or now),
            start_at=self.start_at,
            end_at=self.end_at,
            max_runs=self.max_runs,
            jitter=timedelta(seconds=self.jitter_seconds),
            key=str(self.pk or ""),
        )

    def _spec(self, *, anchor: datetime | None) -> timing.CronSpec | timing.IntervalSpec | timing.OnceSpec:
        if self.kind == ScheduleKind.CRON:
            return timing.CronSpec(self.cron, self.timezone, self.dst_gap, self.dst_fold)
        if self.kind == ScheduleKind.INTERVAL:
            if anchor is None or self.interval is None:
                raise timing.TimingError("an interval schedule needs interval_seconds and an anchor")
            return timing.IntervalSpec(self.interval, anchor, self.interval_mode == IntervalMode.AFTER_COMPLETION)
        if self.run_at is None:
            raise timing.TimingError("a one-shot schedule needs run_at")
        return timing.OnceSpec(self.run_at)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.fields_valid("kind", "cron", "interval_seconds", "run_at"):
            errors.update(self._clean_kind_fields())
        if self.fields_valid("timezone"):
            errors.update(_timing_errors("timezone", timing.validate_timezone, self.timezone))
        if self.fields_valid("input_template"):
            try:
                inputs.template_variables(self.input_template)
            except inputs.TemplateError as error:
                errors["input_template"] = str(error)
        if self.fields_valid("start_at", "end_at") and self.start_at and self.end_at \
                and self.end_at <= self.start_at:
            errors["end_at"] = "end_at must be after start_at."
        if self.fields_valid("retry_backoff_seconds", "retry_backoff_max_seconds") \
                and self.retry_backoff_max_seconds < self.retry_backoff_seconds:
            errors["retry_backoff_max_seconds"] = "Must be at least retry_backoff_seconds."
        if not errors and self.fields_valid(*TIMING_FIELDS) and self.jitter_seconds:
            errors.update(self._clean_jitter())
        if errors:
            raise ValidationError(errors)

    def _clean_jitter(self) -> dict[str, str]:
        """Jitter must stay below the gap between ticks, or ticks would swap order."""
        gap = self.shortest_gap()
        if gap is not None and self.jitter_seconds >= gap.total_seconds():
            return {"jitter_seconds": f"Jitter must be shorter than the time between ticks "
                                      f"({int(gap.total_seconds())}s)."}
        return {}

    def shortest_gap(self) -> timedelta | None:
        """The shortest time between two ticks (a cron's sampled over 800 days); None for a one-shot."""
        if self.kind == ScheduleKind.INTERVAL:
            return self.interval
        if self.kind != ScheduleKind.CRON:
            return None
        spec = timing.Plan(timing.CronSpec(self.cron, self.timezone, self.dst_gap, self.dst_fold))
        sample = timing.ticks_between(spec, after=JITTER_SAMPLE_FROM, until=JITTER_SAMPLE_FROM + timedelta(days=800),
                                      limit=60)
        instants = [tick.at for tick in sample if tick.runs]
        return min((b - a for a, b in zip(instants, instants[1:])), default=None)

    def _clean_kind_fields(self) -> dict[str, str]:
        if self.kind not in ScheduleKind.values:
            return {"kind": f"Unknown schedule kind {self.kind!r}; one of {', '.join(ScheduleKind.values)}."}
        errors: dict[str, str] = {}
        given = {"cron": bool(self.cron), "interval_seconds": self.interval_seconds is not None,
                 "run_at": self.run_at is not None}
        wanted = {ScheduleKind.CRON: "cron", ScheduleKind.INTERVAL: "interval_seconds",
                  ScheduleKind.ONCE: "run_at"}[ScheduleKind(self.kind)]
        for field, present in given.items():
            if field != wanted and present:
                errors[field] = f"A {self.kind} schedule sets {wanted} only; clear {field}."
        if not given[wanted]:
            errors[wanted] = f"A {self.kind} schedule needs {wanted}."
        elif self.kind == ScheduleKind.CRON:
            errors.update(_timing_errors("cron", timing.validate_cron, self.cron))
        elif self.kind == ScheduleKind.INTERVAL and self.interval_seconds == 0:
            errors["interval_seconds"] = "The interval must be at least one second."
        return errors


# Every field the fire-time plan reads: the jitter check builds a plan from them.
TIMING_FIELDS = ("kind", "cron", "interval_seconds", "interval_mode", "run_at", "timezone", "dst_gap", "dst_fold",
                 "start_at", "end_at", "max_runs", "jitter_seconds")


def _timing_errors(field: str, check: Callable[[str], object], value: str) -> dict[str, str]:
    try:
        check(value)
    except ValueError as error:  # a TimingError, or int()'s own limit on a very long number
        return {field: str(error)}
    return {}
