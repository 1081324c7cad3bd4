"""The embedded servers start from the wheels, serve real clients, and stop cleanly."""
from __future__ import annotations

import psycopg
import pytest
import redis

from scheduler_project import embedded


@pytest.fixture
def own_state(tmp_path, monkeypatch):
    # A state folder of its own: these servers are not the test session's.
    monkeypatch.setenv("TICKWISE_STATE_DIR", str(tmp_path / "state"))
    yield tmp_path / "state"
    embedded.stop_servers()


def test_servers_start_serve_and_stop(own_state):
    servers = embedded.ensure_servers()
    assert servers.started == ("postgres", "redis")
    assert embedded.servers_status() == {"postgres": True, "redis": True}

    with psycopg.connect(servers.database_url.replace("postgres://", "postgresql://")) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("tickwise",)
    client = redis.Redis.from_url(servers.redis_url)
    assert client.ping() is True

    again = embedded.ensure_servers()
    assert again.started == () and again.database_url == servers.database_url

    embedded.stop_servers()
    assert embedded.servers_status() == {"postgres": False, "redis": False}
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
