"""Importing settings reads the environment and the state folder; it never starts a server.

Each case imports the settings in a fresh interpreter (this one has imported
them already), with the server URLs removed from its environment and a state
folder of its own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOW_URLS = "import scheduler_project.settings as s; print(s.DATABASE_URL); print(s.CELERY_BROKER_URL)"
NOT_RUNNING = ("DATABASE_URL and REDIS_URL are not set and the embedded PostgreSQL and Redis are not running "
               "(state folder {state}): set them, or start the embedded servers with `./tickwise servers start`")


def run(command: list[str], state: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    clean.update(TICKWISE_STATE_DIR=str(state), **env)
    return subprocess.run(command, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


@pytest.fixture
def live_pid() -> Iterator[int]:
    """A live process for a pid file to name (what a signal-0 check sees for a running server)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def record(state: Path, *, postgres: int | None = None, redis: int | None = None) -> None:
    """What ``./tickwise servers start`` leaves in the state folder: ports and pid files."""
    if postgres is not None:
        (state / "postgres" / "data").mkdir(parents=True)
        (state / "postgres" / "data" / "postmaster.pid").write_text(f"{postgres}\n/data\n")
        (state / "postgres.json").write_text(json.dumps({"port": 25432}))
    if redis is not None:
        (state / "redis").mkdir(parents=True)
        (state / "redis" / "redis.pid").write_text(f"{redis}\n")
        (state / "redis.json").write_text(json.dumps({"port": 26379}))


def test_import_without_urls_or_servers_is_one_error_and_starts_nothing(tmp_path):
    state = tmp_path / "state"
    result = run([sys.executable, "-c", "import scheduler_project.settings"], state)

    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == "django.core.exceptions.ImproperlyConfigured: " + NOT_RUNNING.format(state=state)
    assert not state.exists(), "importing settings created the state folder"


def test_manage_py_prints_only_the_message(tmp_path):
    state = tmp_path / "state"
    result = run([sys.executable, "manage.py", "check"], state)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["manage.py: " + NOT_RUNNING.format(state=state)]
    assert not state.exists()


def test_manage_py_names_a_malformed_variable_in_one_line(tmp_path):
    result = run([sys.executable, "manage.py", "check"], tmp_path / "state",
                 DATABASE_URL="mysql://u@h/db", REDIS_URL="redis://127.0.0.1:6379/0")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "manage.py: DATABASE_URL must be a postgres:// URL (Tickwise needs PostgreSQL), got scheme 'mysql'"]


def test_servers_recorded_as_running_are_used(tmp_path, live_pid):
    record(tmp_path, postgres=live_pid, redis=live_pid)
    result = run([sys.executable, "-c", SHOW_URLS], tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["postgres://postgres@127.0.0.1:25432/tickwise", "redis://127.0.0.1:26379/0"]


def test_a_set_variable_wins_and_only_the_unset_one_comes_from_the_state_folder(tmp_path, live_pid):
    record(tmp_path, postgres=live_pid, redis=live_pid)
    result = run([sys.executable, "-c", SHOW_URLS], tmp_path, REDIS_URL="redis://10.0.0.7:6379/2")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["postgres://postgres@127.0.0.1:25432/tickwise", "redis://10.0.0.7:6379/2"]


def test_a_pid_file_of_a_dead_server_is_not_a_running_server(tmp_path, live_pid, dead_pid):
    record(tmp_path, postgres=live_pid, redis=dead_pid)
    result = run([sys.executable, "-c", SHOW_URLS], tmp_path)

    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(
        "REDIS_URL is not set and the embedded Redis is not running "
        f"(state folder {tmp_path}): set it, or start the embedded servers with `./tickwise servers start`")
    assert (tmp_path / "redis" / "redis.pid").read_text() == f"{dead_pid}\n", "settings rewrote the state folder"
