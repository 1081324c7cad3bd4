"""The ``python`` adapter: dotted paths into real modules, the context, and error mapping."""
from __future__ import annotations

import json
import sys
import textwrap
from datetime import UTC

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from adapters import AdapterError, adapter_for
from adapters.base import request_context
from adapters.python import PythonAdapter

KEY = "sched-7-v3-2026-03-08T07:30:00Z"

# Test modules are not importable by dotted path under --import-mode=importlib,
# so the target functions live in a real module written to a temporary folder.
CALLABLES = """
    from celery.exceptions import SoftTimeLimitExceeded
    from adapters import AdapterError

    class Jobs:
        @staticmethod
        def report(context):
            return {"report": context["input"].upper()}

    def mutate(context):
        context["config"]["callable"] = "changed"
        context["extra"]["history"].append("changed")
        return "ok"

    def slow(context):
        raise TimeoutError("upstream took too long")

    def offline(context):
        raise ConnectionRefusedError("upstream refused")

    def broken(context):
        raise ValueError("bad data in " + context["input"])

    def busy(context):
        raise AdapterError("quota reached", transient=True, category="capacity")

    def interrupted(context):
        raise SoftTimeLimitExceeded()

    def acted_then_failed(context):
        raise AdapterError("posted, then the reply was lost", transient=True, reached=True)

    def timed_out_before_sending(context):
        raise AdapterError("no connection in time", transient=True, category="timeout", reached=False)

    def unserialisable(context):
        return {"at": object()}

    def not_a_number(context):
        return {"score": float("nan")}

    not_callable = 42
"""


@pytest.fixture(scope="module", autouse=True)
def callables_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("callables")
    (folder / "tw_adapter_callables.py").write_text(textwrap.dedent(CALLABLES))
    sys.path.insert(0, str(folder))
    yield "tw_adapter_callables"
    sys.path.remove(str(folder))
    sys.modules.pop("tw_adapter_callables", None)


@pytest.fixture(autouse=True)
def allowed_modules(settings):
    """The test callables' modules, named in ``TICKWISE_PYTHON_CALLABLES`` as a deployment would."""
    settings.TICKWISE = {**settings.TICKWISE, "PYTHON_CALLABLES": [
        "adapters.examples", "tw_adapter_callables", "json", "no_such_package_tw"]}


def call(request):
    return adapter_for("python").call(request)


def failure(request) -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        call(request)
    return caught.value


@pytest.mark.parametrize("path", ["adapters.examples:echo_context", "adapters.examples.echo_context"])
def test_calls_the_function_with_the_run_context(make_request, path):
    output = call(make_request({"callable": path}, attempt=2))

    assert output == {"echo": "Summarise 2026-03-08", "session_id": "sess-1", "tick_at": "2026-03-08T07:30:00Z",
                      "trigger": "schedule", "attempt": 2, "idempotency_key": KEY}


def test_the_context_is_a_plain_json_dict_of_the_request(make_request):
    request = make_request({"callable": "json:dumps"}, extra={"history": []}, workspace_id=7)

    context = json.loads(call(request))

    assert context == request_context(request)
    assert set(context) == {"run_id", "agent", "config", "input", "session_id", "tick_at", "trigger",
                            "idempotency_key", "attempt", "timeout_seconds", "extra", "workspace_id",
                            "run_token", "tools_url"}
    assert context["workspace_id"] == 7  # the tenant, so the function can bind its own credentials


def test_a_method_path_is_resolved(make_request):
    assert call(make_request({"callable": "tw_adapter_callables:Jobs.report"})) == {
        "report": "SUMMARISE 2026-03-08"}


def test_the_function_cannot_alter_the_request(make_request):
    request = make_request({"callable": "tw_adapter_callables:mutate"}, extra={"history": []})

    call(request)

    assert request.config == {"callable": "tw_adapter_callables:mutate"}
    assert request.extra == {"history": []}


@pytest.mark.parametrize(("function", "transient", "category", "text"), [
    ("slow", True, "timeout", "TimeoutError: upstream took too long"),
    ("offline", True, "agent_error", "ConnectionRefusedError: upstream refused"),
    ("broken", False, "agent_error", "ValueError: bad data in Summarise 2026-03-08"),
    ("busy", True, "capacity", "quota reached"),
    ("unserialisable", False, "agent_error", "not JSON-serialisable"),
    ("not_a_number", False, "agent_error", "not JSON-serialisable"),
])
def test_exceptions_say_whether_a_retry_can_help(make_request, function, transient, category, text):
    error = failure(make_request({"callable": f"tw_adapter_callables:{function}"}))

    assert (error.transient, error.category) == (transient, category)
    assert text in str(error)


def test_the_workers_soft_time_limit_passes_through(make_request):
    with pytest.raises(SoftTimeLimitExceeded):
        call(make_request({"callable": "tw_adapter_callables:interrupted"}))


@pytest.mark.parametrize(("path", "text"), [
    (None, "config['callable'] is required"),
    ("", "config['callable'] is required"),
    ("report", "is not 'package.module:function'"),
    ("tw_adapter_callables:", "is not 'package.module:function'"),
    ("no_such_package_tw.jobs:report", "cannot import 'no_such_package_tw.jobs'"),
    ("tw_adapter_callables:missing", "has no attribute 'missing'"),
    ("tw_adapter_callables.Jobs.missing", "cannot import 'tw_adapter_callables.Jobs'"),
    ("tw_adapter_callables:not_callable", "is not callable"),
])
def test_a_bad_path_is_a_config_error(make_request, path, text):
    error = failure(make_request({"callable": path}))

    assert (error.transient, error.category) == (False, "config")
    assert text in str(error)


def test_validate_config_imports_the_path():
    PythonAdapter.validate_config({"callable": "adapters.examples:echo_context"})
    with pytest.raises(AdapterError, match="cannot import") as caught:
        PythonAdapter.validate_config({"callable": "no_such_package_tw:run"})

    assert caught.value.category == "config"


@pytest.mark.parametrize("path", ["os:system", "jsonx:loads", "adapters:adapter_for", "subprocess.run"])
def test_a_module_outside_the_allow_list_is_refused_before_it_is_imported(make_request, path):
    sys.modules.pop("jsonx", None)
    error = failure(make_request({"callable": path}))

    assert (error.transient, error.category) == (False, "config")
    assert "is not in TICKWISE_PYTHON_CALLABLES" in str(error)
    assert "jsonx" not in sys.modules


def test_submodules_of_an_allowed_module_are_allowed(make_request, settings):
    settings.TICKWISE = {**settings.TICKWISE, "PYTHON_CALLABLES": ["adapters"]}
    assert call(make_request({"callable": "adapters.examples:echo_context"}))["echo"]


@pytest.mark.parametrize(("function", "state"), [
    ("slow", "unknown"),  # a TimeoutError: the function may have acted, and it does not dedupe
    ("offline", "pending"),  # a ConnectionError: retried
    ("acted_then_failed", "unknown"),  # the function says it acted
    ("timed_out_before_sending", "pending"),  # the function says it did not
])
def test_a_function_that_may_have_acted_is_not_retried(db, function, state):
    from datetime import datetime

    from runs.models import Run
    from runs.services.dispatch import DispatchRequest, run_dispatch
    from runs.services.execute import run_execute
    from schedules.models import Agent, Schedule

    now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    agent = Agent.objects.create(name="fn", adapter="python",
                                 config={"callable": f"tw_adapter_callables:{function}"})
    schedule = Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *", max_attempts=3)
    run = run_dispatch(schedule, DispatchRequest(trigger="schedule", tick_at=now), now=now, publish=False)

    run_execute(run.id, owner="test", now=now)

    assert Run.objects.get(id=run.id).state == state
