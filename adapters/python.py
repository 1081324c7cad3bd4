"""``python``: call a Python function with the run's context.

Config:

- ``callable`` (required): ``package.module:function`` (or
  ``package.module:Class.method``), or ``package.module.function``.

The function is called as ``fn(context)`` where ``context`` is a plain dict:
``run_id``, ``agent``, ``config``, ``input``, ``session_id``, ``tick_at`` (ISO
8601, ``Z``), ``trigger``, ``idempotency_key``, ``attempt``,
``timeout_seconds``, ``extra``, ``workspace_id``, and ``run_token`` with
``tools_url`` (the run's way back to Tickwise's tools, docs/autonomy.md). It returns the run's output, which must be
JSON-serialisable. See ``adapters.examples.echo_context``.

The function runs inside the Celery worker process, with the worker's
permissions and environment, so only modules listed in
``TICKWISE_PYTHON_CALLABLES`` (and their submodules; default
``adapters.examples``) may be named: anyone who can edit an agent's
config could otherwise call any importable function there. A crash of the interpreter takes the worker
down with it (the reaper then handles the run), and the run's time limit is the
worker's: a soft time limit interrupts the function like any other task code.

Errors: an ``AdapterError`` raised by the function passes through unchanged;
``TimeoutError`` and ``ConnectionError`` are transient; any other exception is
permanent (``agent_error``). A path that cannot be imported is a ``config``
error; ``validate_config`` imports the module to check it.

Tickwise cannot see whether a function acted before it raised, so a
``TimeoutError`` ends the run ``unknown`` rather than retrying it, and a
``ConnectionError`` is retried. A function that knows better says so:
``raise AdapterError("...", transient=True, reached=False)`` is retried,
even for a timeout; ``reached=True`` ends the run ``unknown``.
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded, Terminated
from django.conf import settings

from .base import Adapter, AdapterError, AgentRequest, ConfigField, config_error, ensure_json, request_context

log = logging.getLogger("tickwise.adapters.python")


class PythonAdapter(Adapter):
    kind = "python"
    # Nothing is known about what the function does with the key.
    idempotent = False
    config_fields = (
        ConfigField("callable", "text", "package.module:function, called with the run's context; only modules "
                                        "listed in TICKWISE_PYTHON_CALLABLES.", required=True),
    )

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if not isinstance(config, dict):
            raise config_error("config must be a JSON object")
        resolve_callable(config.get("callable"))

    def call(self, request: AgentRequest) -> Any:
        if not isinstance(request.config, dict):
            raise config_error("config must be a JSON object")
        fn = resolve_callable(request.config.get("callable"))
        try:
            result = fn(request_context(request))
        except (AdapterError, SoftTimeLimitExceeded, Terminated):
            # The worker's time limit and termination are the execute service's
            # to record (category ``timeout``), not a failure of the function.
            raise
        except TimeoutError as error:
            raise AdapterError(f"{_name(error)}: {error}", transient=True, category="timeout") from error
        except ConnectionError as error:
            raise AdapterError(f"{_name(error)}: {error}", transient=True) from error
        except Exception as error:
            log.warning("run %s: %s raised", request.run_id, request.config["callable"], exc_info=True)
            raise AdapterError(f"{_name(error)}: {error}", transient=False) from error
        return ensure_json(result)


def resolve_callable(path: object) -> Callable[[dict[str, Any]], Any]:
    """Import ``package.module:attr.path`` or ``package.module.attr``; config errors name the problem."""
    if not isinstance(path, str) or not path.strip():
        raise config_error("config['callable'] is required: 'package.module:function'")
    module_name, attrs = _split(path.strip())
    if not module_name or not attrs or not all(part.isidentifier() for part in attrs):
        raise config_error(f"config['callable'] {path!r} is not 'package.module:function'")
    allowed = settings.TICKWISE["PYTHON_CALLABLES"]
    if not any(module_name == prefix or module_name.startswith(prefix + ".") for prefix in allowed):
        raise config_error(f"config['callable']: module {module_name!r} is not in TICKWISE_PYTHON_CALLABLES "
                           f"({', '.join(allowed) or 'empty'})")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:
        raise config_error(f"config['callable']: cannot import {module_name!r}: {_name(error)}: {error}") from None
    for attr in attrs:
        target = getattr(target, attr, _MISSING)
        if target is _MISSING:
            raise config_error(f"config['callable']: {module_name!r} has no attribute {'.'.join(attrs)!r}")
    if not callable(target):
        raise config_error(f"config['callable']: {path!r} is not callable")
    fn: Callable[[dict[str, Any]], Any] = target
    return fn


_MISSING = object()


def _split(path: str) -> tuple[str, list[str]]:
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
        return module_name, attr_path.split(".")
    module_name, _, attr = path.rpartition(".")
    return module_name, [attr]


def _name(error: BaseException) -> str:
    return type(error).__name__
