"""The adapter contract: deliver one run to an agent, say whether a retry can help.

Adapters never touch run state; the execute service records what they return
or raise.
"""
from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Runs one tool call for the agent (``name``, JSON arguments) and returns the
# text the model reads back: a result or a refusal it can act on. Supplied by
# the execute path; the adapters never import the tools themselves.
ToolExecutor = Callable[[str, dict[str, Any]], str]


@dataclass(frozen=True)
class AgentRequest:
    run_id: int
    agent: str
    config: dict[str, Any]
    input: str
    session_id: str
    tick_at: datetime
    trigger: str
    idempotency_key: str
    attempt: int
    timeout_seconds: int
    extra: dict[str, Any] = field(default_factory=dict)
    # The tenant the run belongs to, so the agent can bind its own credentials
    # (HTTP agents: the ``Tickwise-Workspace`` header; python callables: the context).
    workspace_id: int | None = None
    # Set when a newer run asked this one to stop (overlap policy cancel_previous);
    # adapters that can stop early check it, the rest finish and are recorded cancelled.
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)
    # The agent's way back to Tickwise (docs/autonomy.md): this attempt's run
    # token, the base URL of the run's tools API, and for adapters that call
    # tools themselves (openai), the tools as JSON Schema function definitions
    # and an executor for their calls.
    run_token: str = field(default="", repr=False)
    tools_url: str = ""
    tools: tuple[dict[str, Any], ...] = ()
    tool_executor: ToolExecutor | None = field(default=None, compare=False, repr=False)


class AdapterError(Exception):
    """A delivery that failed. ``transient`` says whether a retry can help.

    ``retry_after`` (seconds) is the agent's own word on when to try again
    (an HTTP ``Retry-After``); the retry waits at least that long.

    ``reached`` says whether the agent may have acted on the request: False
    when it certainly did not (the connection was refused, the request was
    not completely sent, or the agent refused it: 429, 503), True when the
    request went out and the answer was lost or was a server error, None when
    the adapter cannot tell. A transient failure that may have reached an
    agent which does not dedupe by key is not retried: the run ends
    ``unknown`` (see ``runs.services.execute``).
    """

    def __init__(self, message: str, *, transient: bool, category: str = "agent_error",
                 retry_after: float | None = None, reached: bool | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.category = category
        self.retry_after = retry_after
        self.reached = reached


# The kinds of value a config key holds, for a form that asks for it: ``text``
# (one line), ``textarea``, ``url``, ``env`` (the NAME of an environment
# variable, never its value), ``number`` (seconds), ``choice``, ``object`` (JSON).
CONFIG_TYPES = ("text", "textarea", "url", "env", "number", "choice", "object")


@dataclass(frozen=True)
class ConfigField:
    """One key an adapter's config takes, its type and help, for the admin's form.

    A declaration only: ``validate_config`` stays the authority on what a
    config may hold, and every entry point (admin, API, worker) calls it.
    """

    name: str
    type: str
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in CONFIG_TYPES:
            raise ValueError(f"config field {self.name}: type {self.type!r} is not one of {', '.join(CONFIG_TYPES)}")


class Adapter:
    kind: str = ""
    # The keys its config takes (see ``ConfigField``).
    config_fields: tuple[ConfigField, ...] = ()
    # True when the agent deduplicates by idempotency key, so an attempt whose
    # outcome was lost may be retried with the same key.
    idempotent: bool = False

    def call(self, request: AgentRequest) -> Any:
        """Return a JSON-serialisable output, or raise AdapterError."""
        raise NotImplementedError

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Raise a ``config`` AdapterError naming the missing or bad key.

        Called at the start of every ``call`` (a config may reach the worker
        without passing the admin) and by the admin at save time.
        """


def config_error(message: str) -> AdapterError:
    """A bad agent config: permanent, since retrying the same config fails the same way."""
    return AdapterError(message, transient=False, category="config")


def isoformat_z(moment: datetime) -> str:
    """``2026-03-08T07:30:00Z``; naive datetimes are refused, never guessed."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def request_context(request: AgentRequest) -> dict[str, Any]:
    """The request as a plain dict of JSON values, copied so the receiver cannot alter it."""
    return {
        "run_id": request.run_id, "agent": request.agent, "config": copy.deepcopy(request.config),
        "input": request.input, "session_id": request.session_id, "tick_at": isoformat_z(request.tick_at),
        "trigger": request.trigger, "idempotency_key": request.idempotency_key, "attempt": request.attempt,
        "timeout_seconds": request.timeout_seconds, "extra": copy.deepcopy(request.extra),
        "workspace_id": request.workspace_id, "run_token": request.run_token, "tools_url": request.tools_url,
    }


def ensure_json(output: Any) -> Any:
    """Refuse an output the ledger cannot store, before the run is recorded as succeeded.

    NaN and Infinity are refused too: PostgreSQL's jsonb rejects them, and the
    outcome write would fail after the agent had already acted.
    """
    try:
        json.dumps(output, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise AdapterError(f"output is not JSON-serialisable: {error}", transient=False) from None
    return output
