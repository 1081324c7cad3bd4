"""The processes the workers benchmark starts, and the CPU each side spends, read from ``/proc``."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import process_start, processes_stop

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Processes:
    """Named children, each leading its own process group; ``stop_all`` ends each whole group."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], ready: str) -> None:
        self.procs[name] = process_start(command, env=self.env, log=self.logs / f"{name}.log", ready=ready,
                                         timeout=90)

    def gunicorn(self, name: str = "gunicorn", *, probe: str = "", expect: int = 200) -> str:
        """Tickwise's web process (two gunicorn workers) on a free loopback port; its base URL once both serve.

        Ready when both workers booted and, with ``probe`` (a path), once it
        answered ``expect`` six times: a booted worker imports Django on its
        first request, which must not land in a measurement.
        """
        port = _free_port()
        self.start(name, [sys.executable, "-m", "gunicorn", "scheduler_project.wsgi:application", "--bind",
                          f"127.0.0.1:{port}", "--workers", "2"], ready="Listening at")
        log, base = self.logs / f"{name}.log", f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while log.read_text(errors="replace").count("Booting worker") < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not boot two workers; see {log}")
            time.sleep(0.1)
        if probe:
            _answering(f"{base}{probe}", expect, log)
        return base

    def cpu_seconds(self, names: Sequence[str]) -> float:
        """User + system CPU of every live process in these groups (pool children included)."""
        groups = {self.procs[name].pid for name in names}
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # exited meanwhile
            if int(fields[2]) in groups:
                total += int(fields[11]) + int(fields[12])
        return total / CLOCK_TICKS

    def stop_all(self) -> None:
        processes_stop(list(self.procs.values()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answering(url: str, expect: int, log: Path) -> None:
    import httpx

    answered, deadline = 0, time.monotonic() + 120
    while answered < 6:
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn does not answer; see {log}")
        try:
            answered += httpx.get(url, timeout=30).status_code == expect
        except httpx.HTTPError:
            time.sleep(0.5)


def server_cpu_seconds() -> tuple[float, float]:
    """User + system CPU of the PostgreSQL and Redis servers on this machine.

    PostgreSQL forks a backend per connection: the ones that exited count
    through the postmaster's children time, the live ones through their own.
    """
    postgres = redis = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        name, fields = head.split("(", 1)[1], tail.split()
        own = int(fields[11]) + int(fields[12])
        if name == "postgres":
            postgres += own + (int(fields[13]) + int(fields[14]) if _is_postmaster(int(fields[1])) else 0)
        elif name.startswith("redis-server"):
            redis += own
    return postgres / CLOCK_TICKS, redis / CLOCK_TICKS


def _is_postmaster(parent: int) -> bool:
    try:
        return Path(f"/proc/{parent}/comm").read_text().strip() != "postgres"
    except OSError:
        return True


def machine_busy_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS  # minus idle and iowait
