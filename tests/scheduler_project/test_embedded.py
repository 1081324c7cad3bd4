"""The embedded servers start from the wheels, serve real clients, and stop cleanly."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from scheduler_project import embedded


@pytest.fixture
def own_state(monkeypatch) -> Iterator[Path]:
    # A state folder of its own: these servers are not the test session's. Not
    # under tmp_path: pytest makes that 0700, and when the tests run as root the
    # server user must be able to enter every folder above its data.
    folder = Path(tempfile.mkdtemp(prefix="tickwise-state-"))
    folder.chmod(0o755)
    monkeypatch.setenv("TICKWISE_STATE_DIR", str(folder / "state"))
    yield folder / "state"
    embedded.stop_servers()
    shutil.rmtree(folder, ignore_errors=True)


def test_servers_start_serve_and_stop(own_state):
    servers = embedded.ensure_servers()
    assert servers.started == ("postgres", "redis")
    # ensure_servers() returns only once each server is what servers_status() checks:
    # redis-server accepts connections before it writes its pid file (measured:
    # 6 starts in 30), so waiting for the port alone made this line flaky.
    assert embedded.servers_status() == {"postgres": True, "redis": True}
    assert set(embedded.running_urls().values()) == {servers.database_url, servers.redis_url}

    with psycopg.connect(servers.database_url.replace("postgres://", "postgresql://")) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("tickwise",)
    client = redis.Redis.from_url(servers.redis_url)
    assert client.ping() is True

    again = embedded.ensure_servers()
    assert again.started == () and again.database_url == servers.database_url

    embedded.stop_servers()
    assert embedded.servers_status() == {"postgres": False, "redis": False}
    assert embedded.running_urls() == {}
    assert not (own_state / "postgres" / "data" / "postmaster.pid").exists()


def test_restart_keeps_data(own_state):
    servers = embedded.ensure_servers()
    url = servers.database_url.replace("postgres://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    embedded.stop_servers()

    restarted = embedded.ensure_servers()
    assert restarted.started == ("postgres", "redis")
    with psycopg.connect(restarted.database_url.replace("postgres://", "postgresql://")) as conn:
        assert conn.execute("SELECT n FROM kept").fetchone() == (7,)


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as a separate user only when started by root")
def test_a_folder_the_server_user_cannot_enter_is_named_not_chmodded(monkeypatch):
    folder = Path(tempfile.mkdtemp(prefix="tickwise-closed-"))  # 0700, owned by root
    monkeypatch.setenv("TICKWISE_STATE_DIR", str(folder / "state"))
    try:
        with pytest.raises(RuntimeError, match=f"may not enter {folder}: allow it"):
            embedded.ensure_servers()
        assert folder.stat().st_mode & 0o777 == 0o700
    finally:
        embedded.stop_servers()
        shutil.rmtree(folder, ignore_errors=True)
