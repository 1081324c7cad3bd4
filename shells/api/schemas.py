"""Request and response bodies. The OpenAPI document is generated from these.

Choice fields are the models' own ``TextChoices``, so the document lists the
same values the database accepts. Bounds that need the model (a cron that
parses, a zone that exists, a window that can fire) are checked by the
model's ``full_clean`` and come back as ``validation-error`` field errors;
the bounds here only keep numbers inside what PostgreSQL can store.

PATCH bodies are written out (every field optional, constraints kept): a
field that is absent is left alone, a field sent as ``null`` is cleared.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt

from schedules.models import (
    AdapterKind,
    ConcurrencyScope,
    DstFold,
    DstGap,
    IntervalMode,
    MissedPolicy,
    OverlapPolicy,
    ScheduleKind,
    SessionMode,
)
from schedules.validators import text_problem

from .pagination import MAX_CURSOR, MAX_LIMIT

T = TypeVar("T")
# Bodies are JSON: a number or a flag is taken as the document types it, never
# coerced (pydantic's lax mode would read 0 as false and "5" or 5.0 as 5).
Count = Annotated[StrictInt, Field(ge=0, le=2_147_483_647)]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[-a-zA-Z0-9_]+$")]
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})?")


def _date_time_text(value: object) -> object:
    """An instant as the document types it, a date-time string; not a Unix number nor a bare date."""
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        raise ValueError("must be a date-time string such as 2027-03-14T07:30:00Z")
    return value


Instant = Annotated[datetime, BeforeValidator(_date_time_text)]


def _storable(text: str) -> str:
    problem = text_problem(text)
    if problem:
        raise ValueError(problem)
    return text


# Text a view writes (or queries) as it came: PostgreSQL refuses a NUL and a lone
# surrogate, which would otherwise surface as a 500. Fields a model saves are
# checked by its ``full_clean`` instead, with the model's own message.
Text = Annotated[str, AfterValidator(_storable)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageQuery(Strict):
    """A list's query: the cursor of the page before (opaque) and the page's size."""

    cursor: str | None = Field(None, max_length=MAX_CURSOR)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


# --- agents -------------------------------------------------------------------------

class AgentIn(Strict):
    name: Name
    adapter: AdapterKind = AdapterKind.ECHO
    config: dict[str, Any] = Field(default_factory=dict, description="Adapter settings; never secrets.")
    is_active: StrictBool = True


class AgentPatch(Strict):
    name: Name | None = None
    adapter: AdapterKind | None = None
    config: dict[str, Any] | None = None
    is_active: StrictBool | None = None


class AgentOut(BaseModel):
    id: int
    name: str
    workspace: str
    adapter: str
    config: dict[str, Any]
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime


# --- schedules ----------------------------------------------------------------------

class ScheduleFields(Strict):
    """What a client may set on a schedule (the same fields for create and PATCH)."""

    kind: ScheduleKind | None = None
    cron: Annotated[str, Field(max_length=200)] | None = None
    interval_seconds: Count | None = None
    interval_mode: IntervalMode | None = None
    run_at: Instant | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    dst_gap: DstGap | None = None
    dst_fold: DstFold | None = None
    start_at: Instant | None = None
    end_at: Instant | None = None
    max_runs: Count | None = None
    jitter_seconds: Count | None = None
    missed_policy: MissedPolicy | None = None
    missed_grace_seconds: Count | None = None
    replay_cap: Count | None = None
    overlap_policy: OverlapPolicy | None = None
    max_concurrent: Count | None = None
    concurrency_scope: ConcurrencyScope | None = None
    timeout_seconds: Count | None = None
    max_attempts: Count | None = None
    retry_backoff_seconds: Count | None = None
    retry_backoff_max_seconds: Count | None = None
    input_template: Annotated[str, Field(max_length=20_000)] | None = None
    session_mode: SessionMode | None = None
    failure_limit: Count | None = None


class ScheduleIn(ScheduleFields):
    name: Name


class SchedulePatch(ScheduleFields):
    name: Name | None = None


class ScheduleOut(BaseModel):
    id: int
    name: str
    agent: str
    state: str = Field(description="active, paused, finished or deleted")
    kind: str
    cron: str
    interval_seconds: int | None
    interval_mode: str
    run_at: datetime | None
    timezone: str
    dst_gap: str
    dst_fold: str
    start_at: datetime | None
    end_at: datetime | None
    max_runs: int | None
    jitter_seconds: int
    missed_policy: str
    missed_grace_seconds: int
    replay_cap: int
    overlap_policy: str
    max_concurrent: int
    concurrency_scope: str
    timeout_seconds: int
    max_attempts: int
    retry_backoff_seconds: int
    retry_backoff_max_seconds: int
    input_template: str
    session_mode: str
    failure_limit: int
    paused: bool
    paused_reason: str
    finished_reason: str
    consecutive_failures: int
    next_tick_at: datetime | None
    next_fire_at: datetime | None
    last_tick_at: datetime | None
    run_count: int
    version: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class PauseIn(Strict):
    reason: Annotated[Text, Field(max_length=200)] = ""


class TriggerIn(Strict):
    input: Annotated[Text, Field(max_length=100_000)] | None = Field(
        default=None, description="Replaces the rendered input template for this run only.")


# --- runs ---------------------------------------------------------------------------

class AttemptOut(BaseModel):
    attempt: int
    state: str
    started_at: datetime
    finished_at: datetime | None
    error_message: str


class RunOut(BaseModel):
    id: int
    schedule: str | None
    schedule_id: int | None
    agent: str
    trigger: str
    state: str
    skip_reason: str
    tick_at: datetime
    run_number: int
    attempt: int
    max_attempts: int
    not_before: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lateness_ms: int | None
    session_id: str
    input: str
    output: Any = None
    error_category: str
    error_message: str
    started_by: str | None


class DeliveryOut(BaseModel):
    """A completion webhook of the run: where it stands, apart from the run's own state."""

    webhook_id: str
    url: str
    event_type: str
    status: str = Field(description="pending, delivered, failed (refused by the receiver) or dead (attempts spent).")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    created_at: datetime
    finished_at: datetime | None


class RunDetailOut(RunOut):
    attempts: list[AttemptOut]
    deliveries: list[DeliveryOut] = Field(description="The run's completion webhooks (docs/events.md).")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last one.")


# --- previews, stats and audit ---------------------------------------------------------

class FireOut(BaseModel):
    tick_at: datetime
    fire_at: datetime
    local: str = Field(description="The tick in the schedule's zone, with its offset.")
    runs: bool
    note: str = ""


class PreviewOut(BaseModel):
    timezone: str
    fires: list[FireOut]


class DurationsOut(BaseModel):
    p50_ms: float | None
    p95_ms: float | None


class StatsOut(BaseModel):
    window: str
    since: datetime
    totals: dict[str, int]
    success_rate: float | None = Field(
        description="succeeded / (succeeded + failed + dead + unknown); skipped and cancelled runs excluded; "
                    "null when there is none of those.")
    failures_by_category: dict[str, int]
    consecutive_failures: int
    failure_limit: int
    duration: DurationsOut
    lateness: DurationsOut
    next_tick_at: datetime | None
    next_fire_at: datetime | None
    server_time: datetime


class AuditOut(BaseModel):
    at: datetime
    action: str
    source: str
    user: str | None
    api_key: str | None
    version_before: int | None
    version_after: int | None
    changes: dict[str, Any]
    detail: str
