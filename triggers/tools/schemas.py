"""The tools' arguments: one pydantic model per tool, the single source of its three schemas.

The API body (``/api/v1/runs/{run}/tools/schedule``), the OpenAPI document and
the function tool offered to a model are all ``ScheduleArgs``; a test holds
the function tool's ``parameters`` equal to the API's body schema.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

WHENS = ("at", "in_seconds", "every_seconds", "cron")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Payload(Strict):
    """What the schedule delivers: a ``message`` as it is (no model call), or a ``task`` for the agent."""

    type: Literal["message", "task"] = Field(description="message: the text is delivered as it is, with no "
                                                         "model call; task: the prompt is run by the agent.")
    text: str | None = Field(None, max_length=10_000, description="The message (type message).")
    prompt: str | None = Field(None, max_length=10_000, description="The task's prompt (type task).")

    @model_validator(mode="after")
    def _one_body(self) -> Payload:
        needed = "text" if self.type == "message" else "prompt"
        if not getattr(self, needed):
            raise ValueError(f"a {self.type} payload needs {needed}")
        return self

    @property
    def body(self) -> str:
        return (self.text if self.type == "message" else self.prompt) or ""


class Retry(Strict):
    max_attempts: int = Field(3, ge=1, le=10, description="Attempts per fire, for errors a retry can help.")
    backoff_seconds: int = Field(10, ge=1, le=3600, description="The first retry's wait; it doubles.")


class ScheduleArgs(Strict):
    """Create, list or cancel the schedules this agent made."""

    action: Literal["create", "list", "cancel"]
    at: datetime | None = Field(None, description="create, one-shot: an ISO-8601 instant with its offset.")
    in_seconds: int | None = Field(None, ge=1, description="create, one-shot: this many seconds from now.")
    every_seconds: int | None = Field(None, ge=1, description="create, recurring: an interval in seconds.")
    cron: str | None = Field(None, max_length=200, description="create, recurring: five cron fields, on "
                                                               "local time in `timezone`.")
    timezone: str = Field("UTC", max_length=64, description="The IANA zone of `cron` (e.g. Europe/Paris).")
    payload: Payload | None = Field(None, description="create: what to deliver when it fires.")
    destination: str = Field("session", max_length=500,
                             description="create: 'session' (the result lands in this conversation's session) "
                                         "or an https:// URL the signed result is posted to.")
    session: Literal["current", "new"] = Field("current", description="create: run in this session, or a new "
                                                                      "one each time.")
    process: str | None = Field(None, max_length=200, description="create: a process handle this schedule "
                                                                   "watches (a background run's 'run:<id>'); "
                                                                   "it is cancelled when the process ends.")
    retry: Retry | None = None
    reason: str | None = Field(None, max_length=500, description="create: why, in a sentence shown to people.")
    scope: Literal["session", "agent"] = Field("session", description="list: this session's or this agent's.")
    id: int | None = Field(None, description="cancel: the schedule's id.")

    @model_validator(mode="after")
    def _per_action(self) -> ScheduleArgs:
        if self.action == "create":
            given = [name for name in WHENS if getattr(self, name) is not None]
            if len(given) != 1:
                shown = ", ".join(given) or "none"
                raise ValueError(f"create takes exactly one of {', '.join(WHENS)} (given: {shown})")
            if self.payload is None:
                raise ValueError("create needs a payload: {type: message, text} or {type: task, prompt}")
            if not (self.reason or "").strip():
                raise ValueError("create needs a reason, shown to people")
            if self.at is not None and self.at.tzinfo is None:
                raise ValueError("at needs an offset or Z (e.g. 2026-12-01T09:00:00Z)")
        if self.action == "cancel" and self.id is None:
            raise ValueError("cancel needs the schedule's id")
        return self
