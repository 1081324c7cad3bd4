"""A worker rides out a Redis restart: it reconnects and runs what is dispatched after it.

The Redis here is the test's own (the ``redis-server`` of the embedded
servers, on a free port), not the one the session shares, so killing it
disturbs no other test. It is killed while the worker holds a run in flight and
waits for the next message: that is when Celery 5.7 with kombu 5.7 closed the
lost connection twice and the worker died with ``Unrecoverable error:
AttributeError('NoneType' object has no attribute 'hostname')``
(``scheduler_project.celery.Consumer``).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.utils import timezone

from runs.models import Run, RunState
from scheduler_project.embedded import redis as embedded_redis
from scheduler_project.embedded.state import free_port, pid_alive, read_pid
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from tests.adapters.conftest import AgentServer, Reply
from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


class OwnRedis:
    """A redis-server daemon on a free port that the test kills and starts again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return read_pid(self.folder / "redis.pid")

    def start(self) -> None:
        (self.folder / "redis.pid").unlink(missing_ok=True)
        subprocess.run(embedded_redis.server_command(self.port, self.folder), check=True)
        wait_for(self._answers, timeout=20, what=f"redis-server on port {self.port}")

    def kill(self) -> None:
        pid = self.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), timeout=20, what=f"redis-server {pid} to die")

    def _answers(self) -> bool:
        try:
            return bool(self.pid) and redis.Redis(port=self.port, socket_timeout=1).ping()
        except redis.ConnectionError:
            return False


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    server.folder.mkdir()
    server.start()
    yield server
    if server.pid and pid_alive(server.pid):
        server.kill()


@pytest.fixture
def slow_agent() -> Iterator[AgentServer]:
    """Answers after four seconds: long enough for Redis to die and come back meanwhile."""
    server = AgentServer(Reply(body={"ok": True}, delay=4.0)).start()
    yield server
    server.stop()


@pytest.fixture
def quick_agent() -> Iterator[AgentServer]:
    server = AgentServer(Reply(body={"ok": True})).start()
    yield server
    server.stop()


def http_schedule(server: AgentServer, name: str) -> Schedule:
    agent = Agent.objects.create(name=name, adapter="http", config={"url": f"{server.url}/run"})
    # A yearly cron no beat serves here: the runs below are started on demand.
    return schedule_save(Schedule(agent=agent, name="yearly", cron="0 0 1 1 *", timeout_seconds=30),
                         now=timezone.now())


def run_now(env: dict[str, str], schedule: str, *options: str) -> subprocess.CompletedProcess:
    """``manage.py run_now``: the operator's dispatch path, publishing to the given Redis."""
    return subprocess.run([sys.executable, "manage.py", "run_now", schedule, *options], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def reconnected_or_gone(worker: subprocess.Popen, log: str) -> bool:
    return log.count("Connected to redis://") >= 2 or "Unrecoverable error" in log or worker.poll() is not None


def test_a_worker_holding_a_run_rides_out_a_redis_restart(stack, process_env, own_redis, slow_agent, quick_agent):
    http_schedule(slow_agent, "slow")
    http_schedule(quick_agent, "quick")
    env = {**process_env, "REDIS_URL": own_redis.url}
    # Two slots: with one run in hand the worker also waits on BRPOP for the next message.
    worker = stack.worker("w1", concurrency=2, extra_env={"REDIS_URL": own_redis.url})

    assert run_now(env, "slow/yearly").returncode == 0
    wait_for(lambda: slow_agent.deliveries, timeout=60, what="the slow run to reach its agent")
    own_redis.kill()
    own_redis.start()
    log = worker.log  # type: ignore[attr-defined]
    wait_for(lambda: reconnected_or_gone(worker, log.read_text()), timeout=60,
             what=f"the worker to reconnect ({log})")
    assert "Unrecoverable error" not in log.read_text(), f"the worker gave up on the broker ({log})"

    after = run_now(env, "quick/yearly", "--wait", "--timeout", "60")
    assert after.returncode == 0, after.stderr
    assert " succeeded " in after.stdout
    assert worker.poll() is None, f"the worker exited with {worker.returncode} ({log})"
    # The run in flight during the restart still ends: its outcome goes to PostgreSQL, not Redis.
    in_flight = Run.objects.get(schedule__agent__name="slow")
    wait_for(lambda: Run.objects.get(pk=in_flight.pk).state == RunState.SUCCEEDED, timeout=60,
             what="the run in flight during the restart to succeed")
