"""``./tickwise run`` restarts a crashed process of the stack, and Ctrl-C still stops them all."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from scheduler_project.cli import RESTART_MAX, RESTART_STABLE, restart_delay
from scheduler_project.embedded.state import free_port, pid_alive
from tests.conftest import ROOT, wait_for

STARTED = re.compile(r"^(\w+) started \(pid (\d+)\)$", re.MULTILINE)


def test_the_pause_doubles_up_to_the_cap_and_starts_over_after_a_stable_run():
    pauses, previous = [], 0.0
    for _ in range(8):
        previous = restart_delay(previous, uptime=2.0)
        pauses.append(previous)
    assert pauses == [1, 2, 4, 8, 16, 30, 30, 30]
    assert restart_delay(RESTART_MAX, uptime=RESTART_STABLE) == 1
    assert restart_delay(RESTART_MAX, uptime=RESTART_STABLE - 1) == RESTART_MAX


class Run:
    """``python -m scheduler_project.cli run`` with its output in a file."""

    def __init__(self, env: dict[str, str], log) -> None:
        self.log = log
        command = [sys.executable, "-m", "scheduler_project.cli", "run", "--bind", f"127.0.0.1:{free_port()}"]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(log, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.log.read_text()

    def pids(self, name: str) -> list[int]:
        """Every pid ``name`` was started with, in order."""
        return [int(pid) for child, pid in STARTED.findall(self.text()) if child == name]

    def children(self) -> list[int]:
        return [int(pid) for _, pid in STARTED.findall(self.text())]


@pytest.fixture
def local_stack(process_env, tmp_path) -> Iterator[Run]:
    run = Run(process_env, tmp_path / "run.log")
    yield run
    if run.proc.poll() is None:
        os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait(timeout=30)
    for pid in run.children():  # each child leads its own process group
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_killed_worker_is_restarted_and_ctrl_c_stops_everything(local_stack):
    wait_for(lambda: re.search(r"worker1@\S+ ready\.", local_stack.text()), timeout=180,
             what=f"worker1 to be ready ({local_stack.log})")
    first, = local_stack.pids("worker1")

    os.killpg(first, signal.SIGKILL)
    wait_for(lambda: len(local_stack.pids("worker1")) == 2, timeout=60,
             what=f"worker1 to be started again ({local_stack.log})")
    assert f"worker1 (pid {first}) exited with signal SIGKILL after" in local_stack.text()
    assert "; restarting in 1s" in local_stack.text()
    second = local_stack.pids("worker1")[1]
    assert second != first and pid_alive(second)
    wait_for(lambda: len(re.findall(r"worker1@\S+ ready\.", local_stack.text())) == 2, timeout=120,
             what=f"the new worker1 to be ready ({local_stack.log})")
    assert local_stack.proc.poll() is None, "the supervisor stopped when one child died"

    os.kill(local_stack.proc.pid, signal.SIGTERM)  # what Ctrl-C does: SIGINT is handled the same way
    assert local_stack.proc.wait(timeout=60) == 0
    running = [pid for pid in local_stack.children() if pid_alive(pid)]
    assert running == [], f"still running after the stack stopped: {running}"
