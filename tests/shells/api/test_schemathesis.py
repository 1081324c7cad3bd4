"""Property-based tests of the live API from its own OpenAPI document (schemathesis).

Every operation of ``/api/v1/openapi.json`` gets generated requests with an
admin key: against the seeded objects (so lookups succeed and the views run
to the end), against generated path values, and with invalid data. Checks:
no 5xx, every status and content type documented, every body matching its
schema, invalid data refused. Writes that need ``If-Match`` get the
object's current ETag, so generated bodies reach validation and the save;
deletes do not, so the seeded objects stay for the next cases.
"""
from __future__ import annotations

import os
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import CheckFunction, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.shells.api.conftest import Api
from workspaces.models import Role

# TICKWISE_API_FUZZ_SCALE=10 multiplies the examples for a deeper (slower) search.
SCALE = int(os.environ.get("TICKWISE_API_FUZZ_SCALE", "1"))
CONFORMANCE: list[CheckFunction] = [not_a_server_error, status_code_conformance, content_type_conformance,
                                    response_schema_conformance]
# Examples per operation and mode; about a minute for the whole document on a quiet machine.
EXAMPLES = {"seeded": 25, "generated": 4, "negative": 12}


def examples(count: int) -> hypothesis.settings:
    return hypothesis.settings(max_examples=count * SCALE, deadline=None, database=None, derandomize=True,
                               phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def seed(admin: Api) -> dict[str, str]:
    """An agent with a schedule, and runs in a few states; the path values that name them."""
    agent = admin.create_agent("scout")
    schedule = admin.create_schedule("scout", "nightly", timezone="America/New_York")
    run = admin.trigger("scout", "nightly", input="hello")
    cancelled = admin.trigger("scout", "nightly")
    assert admin.post(f"/runs/{cancelled['id']}/cancel").status_code == 200
    return {"agent": str(agent["id"]), "schedule": str(schedule["id"]), "run": str(run["id"])}


def versioned(admin: Api, case: schemathesis.Case) -> str | None:
    """The URL whose ETag a write of ``case`` must send, or None."""
    if case.method == "PATCH" or case.path.endswith(("/pause", "/resume")):
        agent, schedule = case.path_parameters.get("agent"), case.path_parameters.get("schedule")
        return f"/agents/{agent}" + (f"/schedules/{schedule}" if schedule is not None else "")
    return None


def reactivate(admin: Api, refs: dict[str, str]) -> None:
    """Undo a generated PATCH that switched the seeded agent off, so triggers reach the ledger again."""
    url = f"/agents/{refs['agent']}"
    current = admin.get(url)
    if not current.json()["is_active"]:
        assert admin.patch(url, json={"is_active": True}, headers={"If-Match": current.headers["ETag"]}).is_success


def exercise(admin: Api, base_url: str, operation: Any, mode: str, refs: dict[str, str]) -> None:
    fixed = {name: value for name, value in refs.items() if f"{{{name}}}" in operation.path}
    strategy = operation.as_strategy(
        generation_mode=GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE,
        path_parameters=fixed if mode != "generated" else None, headers=admin.caller.headers)
    checks: list[CheckFunction] = [not_a_server_error, negative_data_rejection] if mode == "negative" \
        else CONFORMANCE

    @examples(EXAMPLES[mode])
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        url = versioned(admin, case) if mode == "seeded" else None
        if url is not None:
            current = admin.get(url)
            if current.status_code == 200:
                case.headers["If-Match"] = current.headers["ETag"]
        case.call_and_validate(base_url=base_url, checks=checks)
    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        if mode != "negative":
            raise
        # Nothing to make invalid: its only inputs are the seeded path values.


@pytest.mark.parametrize("mode", list(EXAMPLES))
def test_every_operation_conforms_to_the_served_schema(api_url, make_caller, api_as, mode):
    admin = api_as(make_caller(Role.ADMIN))
    refs = seed(admin)
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    # A generated query of many long values can pass gunicorn's request-line limit: its 414 is a refusal too.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "414"]
    base_url = api_url.removesuffix("/api/v1")
    failures = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"== an operation the document does not describe well: {result.err()}")
            continue
        operation = result.ok()
        reactivate(admin, refs)
        try:
            exercise(admin, base_url, operation, mode, refs)
        except (Exception, BaseExceptionGroup) as error:  # every operation's verdict, not only the first
            failures.append(f"== {operation.method.upper()} {operation.path}\n{error}")
    assert not failures, "\n\n".join(failures)
