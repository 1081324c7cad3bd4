"""Keep a running attempt's lease alive, and notice a cancel request.

While the agent works, ``lease_expires_at`` (database clock) is renewed every
third of the lease. The renewal is fenced: once the reaper has taken the run
over, renewals stop matching and the attempt learns it is stale.

One watcher thread per process serves every attempt in it, started on first
use (so after the pool's fork). Starting and joining a thread per run cost a
worker more CPU than the claim itself.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta

from django.db import DatabaseError, connection

from .. import sql
from ..models import Run

log = logging.getLogger("tickwise.heartbeat")

CANCEL_POLL = 0.5  # seconds


class Heartbeat:
    def __init__(self, run_id: int, token: int, lease: timedelta, *, watch_cancel: bool = False) -> None:
        self.run_id, self.token, self.lease = run_id, token, lease
        self.watch_cancel = watch_cancel
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self.renew_every = max(0.2, lease.total_seconds() / 3)
        # A run that may be cancelled looks for the request often: stopping
        # late would overlap the run that replaced it.
        self.period = min(CANCEL_POLL, self.renew_every) if watch_cancel else self.renew_every
        self.next_check = self.next_renewal = 0.0

    def __enter__(self) -> Heartbeat:
        now = time.monotonic()
        self.next_check, self.next_renewal = now + self.period, now + self.renew_every
        _watcher().add(self)
        return self

    def __exit__(self, *exc) -> None:
        _watcher().discard(self)

    def _mine(self):
        return Run.objects.fenced(self.run_id, self.token)

    def renew(self) -> None:
        """Extend the lease; the same statement says whether a stop was asked for meanwhile.

        So a cancel on request (the API) reaches any running attempt within
        a third of its lease at no extra query; ``watch_cancel`` attempts
        (overlap policy ``cancel_previous``) also poll every ``CANCEL_POLL``.
        """
        with connection.cursor() as cursor:
            sql.RENEW_LEASE.execute(cursor, {"lease": self.lease, "id": self.run_id, "token": self.token})
            row = cursor.fetchone()
        if row is None:
            self.lost.set()
        elif row[0]:
            self.cancelled.set()

    def check_cancel(self) -> None:
        if self._mine().filter(cancel_requested_at__isnull=False).exists():
            self.cancelled.set()

    def due(self, now: float) -> None:
        """The watcher's call when ``next_check`` has come."""
        if now >= self.next_renewal:
            self.next_renewal = now + self.renew_every
            self.renew()
        if self.watch_cancel and not self.lost.is_set():
            self.check_cancel()
        self.next_check = now + self.period


class _Watcher:
    """The process's heartbeat thread: sleeps until the earliest check is due."""

    def __init__(self) -> None:
        self.beats: set[Heartbeat] = set()
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="tickwise-heartbeat", daemon=True)
        self.thread.start()

    def add(self, beat: Heartbeat) -> None:
        with self.changed:
            self.beats.add(beat)
            self.changed.notify()

    def discard(self, beat: Heartbeat) -> None:
        with self.changed:
            self.beats.discard(beat)
            self.changed.notify()

    def _run(self) -> None:
        while True:
            with self.changed:
                beats = [beat for beat in self.beats if not beat.lost.is_set()]
                if not beats:
                    connection.close()  # hold no connection while no attempt runs here
                wait = min((beat.next_check for beat in beats), default=time.monotonic() + 60) - time.monotonic()
                if wait > 0:
                    self.changed.wait(wait)
                    continue
            now = time.monotonic()
            for beat in beats:
                if beat.next_check <= now:
                    self._check(beat, now)

    @staticmethod
    def _check(beat: Heartbeat, now: float) -> None:
        try:
            beat.due(now)
        except DatabaseError:
            # The lease has a margin; the next check reconnects.
            log.warning("heartbeat of run %s failed; retrying", beat.run_id, exc_info=True)
            beat.next_check = now + 1.0
            connection.close()


_state: dict[int, _Watcher] = {}
_state_lock = threading.Lock()


def _watcher() -> _Watcher:
    pid = os.getpid()  # a forked child starts its own thread
    with _state_lock:
        if pid not in _state:
            _state.clear()
            _state[pid] = _Watcher()
        return _state[pid]
