"""The processes the workers benchmark starts, and the CPU each side spends, read from ``/proc``."""
from __future__ import annotations

import os
import subprocess
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
