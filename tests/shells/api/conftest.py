"""A live API: gunicorn serving the test database on loopback, and keys for callers of each role.

One gunicorn (2 workers) serves the whole session: starting one costs
seconds of the machine's two cores, and every test's rows are its own
anyway (``transactional_db`` empties the tables after each test, the
server's connections sit idle between requests). A test that needs a server
with other settings starts its own with ``start_api``.
"""
from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from shells.api.problems import CONTENT_TYPE, TYPE_BASE
from tests.conftest import Stack, _database_url, wait_for
from workspaces.keys import api_key_create
from workspaces.models import Membership, Role, Workspace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_api(stack: Stack, name: str = "gunicorn", extra_env: dict[str, str] | None = None) -> str:
    """Start a gunicorn (2 workers) under ``stack`` and return its API base URL once it answers."""
    port = free_port()
    proc = stack.start([sys.executable, "-m", "gunicorn", "scheduler_project.wsgi:application", "--bind",
                        f"127.0.0.1:{port}", "--workers", "2", "--access-logfile", "-"], name,
                       extra_env=extra_env)
    base, log = f"http://127.0.0.1:{port}/api/v1", stack.logs / f"{name}.log"

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            httpx.get(f"{base}/openapi.json", timeout=2)
            return True
        except httpx.HTTPError:
            return False
    wait_for(answers, timeout=90, what=f"gunicorn to serve the API ({log})")
    return base


@pytest.fixture(scope="session")
def api_url(django_db_setup, tmp_path_factory) -> Iterator[str]:
    """The base URL of a real gunicorn (2 workers) serving the API on the test database."""
    env = {**os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": settings.CELERY_BROKER_URL,
           "PYTHONUNBUFFERED": "1"}
    server = Stack(env, tmp_path_factory.mktemp("api"))
    try:
        yield start_api(server)
    finally:
        server.stop_all()  # before the test database is dropped: its connections would hold it


@dataclass
class Caller:
    token: str
    workspace: Workspace
    user_id: int
    username: str
    key_id: int
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_caller(transactional_db) -> Callable[..., Caller]:
    users = get_user_model()

    def make(role: str = Role.ADMIN, workspace: str = "acme", username: str | None = None,
             expires_at: datetime | None = None) -> Caller:
        space, _ = Workspace.objects.get_or_create(slug=workspace, defaults={"name": workspace.title()})
        user = users.objects.create_user(username or f"{workspace}-{role}-{users.objects.count()}")
        Membership.objects.create(workspace=space, user=user, role=role)
        issued = api_key_create(workspace=space, user=user, name=f"{role} key", expires_at=expires_at)
        return Caller(token=issued.token, workspace=space, user_id=user.pk, username=user.get_username(),
                      key_id=issued.key.pk, role=role)
    return make


@pytest.fixture
def http(api_url, transactional_db) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        yield client


class Api:
    """One caller's view of the live API: requests with its key, and the common setup steps."""

    def __init__(self, client: httpx.Client, caller: Caller) -> None:
        self.client, self.caller = client, caller

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, headers={**self.caller.headers, **(headers or {})}, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def create_agent(self, name: str = "scout", **fields: Any) -> dict[str, Any]:
        response = self.post("/agents", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def create_schedule(self, agent: str, name: str = "nightly", **fields: Any) -> dict[str, Any]:
        body = {"name": name, "kind": "cron", "cron": "0 3 * * *", **fields}
        response = self.post(f"/agents/{agent}/schedules", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def trigger(self, agent: str, schedule: str, **body: Any) -> dict[str, Any]:
        response = self.post(f"/agents/{agent}/schedules/{schedule}/trigger", json=body)
        assert response.status_code == 202, response.text
        return response.json()

    def etag(self, url: str) -> str:
        response = self.get(url)
        assert response.status_code == 200, response.text
        return response.headers["ETag"]


@pytest.fixture
def api_as(http) -> Callable[[Caller], Api]:
    return lambda caller: Api(http, caller)


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and stable type; returns its body."""
    assert response.status_code == status, f"{response.status_code} != {status}: {response.text}"
    assert response.headers["Content-Type"].split(";")[0] == CONTENT_TYPE, response.headers
    body = response.json()
    assert body["type"] == TYPE_BASE + slug, body
    assert body["status"] == status and body["title"], body
    return body


def field_names(problem: dict[str, Any]) -> set[str]:
    return {error["field"] for error in problem.get("errors") or []}


def now_iso() -> str:
    return timezone.now().isoformat()
