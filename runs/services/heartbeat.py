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


CANCEL_POLL = 0.5  # seconds


class Heartbeat:
    def __init__(self, run_id: int, token: int, lease: timedelta, *, watch_cancel: bool = False) -> None:
        self.run_id, self.token, self.lease = run_id, token, lease
        self.watch_cancel = watch_cancel
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
        renew_every = max(0.2, self.lease.total_seconds() / 3)
        # A run that may be cancelled looks for the request often: stopping
        # late would overlap the run that replaced it.
        period = min(CANCEL_POLL, renew_every) if self.watch_cancel else renew_every
        since_renewal = 0.0
        try:
            while not self._stop.wait(period):
                since_renewal += period
                if since_renewal >= renew_every:
                    since_renewal = 0.0
                    self.renew()
                if self.watch_cancel:
                    self.check_cancel()
        finally:
            connection.close()  # this thread's own connection

    def _mine(self):
        return Run.objects.filter(id=self.run_id, state=RunState.RUNNING, fencing_token=self.token)

    def renew(self) -> None:
        if not self._mine().update(lease_expires_at=Now() + self.lease):
            self.lost.set()
            self._stop.set()

    def check_cancel(self) -> None:
        if self._mine().filter(cancel_requested_at__isnull=False).exists():
            self.cancelled.set()
