"""A live API: gunicorn serving the test database on loopback, and keys for callers of each role."""
from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from workspaces.keys import api_key_create
from workspaces.models import Membership, Role, Workspace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def api_url(stack, waiter) -> str:
    """The base URL of a real gunicorn (2 workers) serving the API on the test database."""
    port = free_port()
    stack.start([sys.executable, "-m", "gunicorn", "scheduler_project.wsgi:application", "--bind",
                 f"127.0.0.1:{port}", "--workers", "2", "--access-logfile", "-"], "gunicorn")
    base = f"http://127.0.0.1:{port}/api/v1"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
    waiter(answers, timeout=60, what="gunicorn to serve the API")
    return base


@dataclass
class Caller:
    token: str
    workspace: Workspace
    user_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_caller(transactional_db) -> Callable[..., Caller]:
    users = get_user_model()

    def make(role: str = Role.ADMIN, workspace: str = "acme", username: str | None = None) -> Caller:
        space, _ = Workspace.objects.get_or_create(slug=workspace, defaults={"name": workspace.title()})
        user = users.objects.create_user(username or f"{workspace}-{role}-{users.objects.count()}")
        Membership.objects.create(workspace=space, user=user, role=role)
        issued = api_key_create(workspace=space, user=user, name=f"{role} key")
        return Caller(token=issued.token, workspace=space, user_id=user.pk)
    return make


@pytest.fixture
def http(api_url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        yield client


def now_iso() -> str:
    return timezone.now().isoformat()
