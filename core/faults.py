"""Named fault points for crash tests.

``fault_point("beat.after_commit")`` kills the current process with SIGKILL
when the name is listed in ``TICKWISE_FAULTS`` (comma-separated). Tests use it
to crash a real beat or worker at an exact step; with the variable unset (every
deployment) it does nothing.
"""
from __future__ import annotations

import os
import signal


def fault_point(name: str) -> None:
    if name in os.environ.get("TICKWISE_FAULTS", "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)
