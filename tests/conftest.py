"""Shared fixtures: real Celery worker and beat processes against the test database.

Processes run the same commands as ``./tickwise run`` (``scheduler_project.cli``),
pointed at pytest-django's test database and the test Redis database.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from scheduler_project import cli
from tests.broker import queue_clear

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _clean_queue() -> None:
    """Start each session with an empty queue: stale messages would confuse counts.

    Only this run's queue (``TICKWISE_QUEUE``): other test runs may share the Redis.
    """
    queue_clear()


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def process_env(transactional_db, tmp_path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATABASE_URL=_database_url(), REDIS_URL=settings.CELERY_BROKER_URL,
               TICKWISE_BEAT_MAX_SLEEP="1", PYTHONUNBUFFERED="1")
    # Each test's processes count their metrics (core.metrics) into a directory of its own.
    (tmp_path / "metrics").mkdir(exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    return env


class Stack:
    """Real worker and beat processes, stopped (hard) when the test ends."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, []

    def start(self, command: list[str], name: str, ready: str | None = None,
              extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.logs / f"{name}.log"
        proc = subprocess.Popen(command, cwd=ROOT, env={**self.env, **(extra_env or {})},
                                stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        proc.log = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        if ready:
            wait_for(lambda: ready in log.read_text(), timeout=60, what=f"{name} to be ready ({log})")
        return proc

    def worker(self, name: str = "w1", concurrency: int = 1, **kw) -> subprocess.Popen:
        return self.start(cli.worker_command(f"test-{name}", concurrency), name, ready="ready.", **kw)

    def beat(self, name: str = "beat", **kw) -> subprocess.Popen:
        return self.start(cli.beat_command(), name, ready="beat: Starting", **kw)

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture
def stack(process_env, tmp_path) -> Iterator[Stack]:
    running = Stack(process_env, tmp_path)
    yield running
    running.stop_all()


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def waiter() -> Callable[..., object]:
    return wait_for
