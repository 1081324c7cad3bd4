"""The embedded Redis server: one redis-server daemon on loopback, no persistence.

Redis carries messages and wake-ups only; PostgreSQL holds every guarantee, so
the embedded Redis keeps nothing on disk.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .binaries import redis_server_binary
from .state import accepts_connections, free_port, pid_alive, read_json, state_dir, write_json


def _root() -> Path:
    return state_dir() / "redis"


def _port() -> int | None:
    return read_json("redis.json").get("port")


def _pid() -> int | None:
    pidfile = _root() / "redis.pid"
    return int(pidfile.read_text().strip()) if pidfile.exists() else None


def url() -> str:
    return f"redis://127.0.0.1:{_port()}/0"


def is_running() -> bool:
    pid, port = _pid(), _port()
    return bool(pid and port and pid_alive(pid) and accepts_connections(port))


def ensure_running() -> bool:
    """Start the server unless it runs; True when this call started it."""
    if is_running():
        return False
    _root().mkdir(parents=True, exist_ok=True)
    port = free_port(_port())
    write_json("redis.json", {"port": port})
    subprocess.run([
        str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1",
        "--daemonize", "yes", "--pidfile", str(_root() / "redis.pid"),
        "--logfile", str(_root() / "server.log"), "--dir", str(_root()),
        "--save", "", "--appendonly", "no", "--maxclients", "2000",
    ], check=True)
    _wait(lambda: accepts_connections(port), what=f"redis-server on port {port}")
    return True


def stop() -> None:
    pid = _pid()
    if pid and pid_alive(pid):
        import os
        import signal

        os.kill(pid, signal.SIGTERM)
        _wait(lambda: not pid_alive(pid), what=f"redis-server {pid} to stop")


def _wait(condition, *, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)
