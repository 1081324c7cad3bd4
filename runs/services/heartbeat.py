"""Keep a running attempt's lease alive, and notice a cancel request.

A thread renews ``lease_expires_at`` (database clock) every third of the lease
while the agent works. The renewal is fenced: once the reaper has taken the
run over, renewals stop matching and the attempt learns it is stale.
"""
from __future__ import annotations

import threading
from datetime import timedelta

from django.db import connection
from django.db.models.functions import Now

from ..models import Run, RunState


class Heartbeat:
    def __init__(self, run_id: int, token: int, lease: timedelta) -> None:
        self.run_id, self.token, self.lease = run_id, token, lease
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        # Renew well within the lease; poll at least every 5 s so a cancel is noticed soon.
        period = min(5.0, max(0.2, self.lease.total_seconds() / 3))
        try:
            while not self._stop.wait(period):
                self.renew()
        finally:
            connection.close()  # this thread's own connection

    def renew(self) -> None:
        mine = Run.objects.filter(id=self.run_id, state=RunState.RUNNING, fencing_token=self.token)
        if not mine.update(lease_expires_at=Now() + self.lease):
            self.lost.set()
            self._stop.set()
            return
        if mine.filter(cancel_requested_at__isnull=False).exists():
            self.cancelled.set()
