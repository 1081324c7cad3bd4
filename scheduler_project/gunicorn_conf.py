"""gunicorn settings for the web process (``./tickwise web`` passes them with ``--config``).

prometheus-client's multiprocess mode keeps one file per process: a worker
that exits is marked dead, so its live gauges stop being reported (its
counters stay: a counter of a dead process still counted what happened).
"""
from __future__ import annotations

import os
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
