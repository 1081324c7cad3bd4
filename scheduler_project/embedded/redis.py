"""The embedded Redis server: one redis-server daemon on loopback, no persistence.

Redis carries messages and wake-ups only; PostgreSQL holds every guarantee, so
the embedded Redis keeps nothing on disk.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .binaries import redis_server_binary
from .state import accepts_connections, free_port, pid_alive, read_json, read_pid, state_dir, write_json


def _root() -> Path:
    return state_dir() / "redis"


def _pidfile() -> Path:
    return _root() / "redis.pid"


def _port() -> int | None:
    return read_json("redis.json").get("port")


def _pid() -> int | None:
    return read_pid(_pidfile())


def url() -> str:
    return f"redis://127.0.0.1:{_port()}/0"


def is_recorded_alive() -> bool:
    """Read-only: the state folder records a port and a live server process."""
    pid = _pid()
    return bool(pid and _port() and pid_alive(pid))


def is_running() -> bool:
    port = _port()
    return bool(port and is_recorded_alive() and accepts_connections(port))


def ensure_running() -> bool:
    """Start the server unless it runs; True when this call started it."""
    if is_running():
        return False
    _root().mkdir(parents=True, exist_ok=True)
    # A pid file left by a killed server must not stand in for the new one's.
    _pidfile().unlink(missing_ok=True)
    port = free_port(_port())
    write_json("redis.json", {"port": port})
    subprocess.run(server_command(port, _root()), check=True)
    # Wait for everything is_running() reads: the daemon listens before it
    # writes its pid file, so the port alone answers too early.
    _wait(is_running, what=f"redis-server on port {port}")
    return True


def server_command(port: int, folder: Path) -> list[str]:
    """A daemonized redis-server on loopback that keeps nothing on disk; its pid file goes in ``folder``."""
    return [
        str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1",
        "--daemonize", "yes", "--pidfile", str(folder / "redis.pid"),
        "--logfile", str(folder / "server.log"), "--dir", str(folder),
        "--save", "", "--appendonly", "no", "--maxclients", "2000",
    ]


def stop() -> None:
    pid = _pid()
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        _wait(lambda: not pid_alive(pid), what=f"redis-server {pid} to stop")


def _wait(condition: Callable[[], bool], *, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)
