"""Measuring one call: wall time, SQL statements, Redis commands; process memory."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis


@dataclass(frozen=True)
class Sample:
    seconds: float
    queries: int  # SQL statements this process sent to PostgreSQL (``StatementCounter``)
    commands: int  # Redis commands sent by the scheduler's own client (not the broker's)
    result: Any = None


class CommandCounter:
    """Counts the commands a redis-py client sends (pipelined commands each count)."""

    def __init__(self) -> None:
        self.commands = 0

    def client(self, url: str) -> redis.Redis:
        counter = self

        class CountingConnection(redis.Connection):
            def pack_command(self, *args):
                counter.commands += 1
                return super().pack_command(*args)

            def pack_commands(self, commands):
                commands = list(commands)
                counter.commands += len(commands)
                return super().pack_commands(commands)

        pool = redis.ConnectionPool.from_url(url, connection_class=CountingConnection, decode_responses=True)
        return redis.Redis(connection_pool=pool)


class StatementCounter:
    """Counts every statement this process sends to PostgreSQL, at the psycopg level.

    Each cursor execute (Django's queries, savepoints, and what Django's query
    log never sees: its connection health check ``SELECT 1``, type lookups on
    connect) and each command psycopg sends itself (``BEGIN``, ``COMMIT``,
    ``ROLLBACK``). A ``COMMIT`` asked for outside a transaction, which psycopg
    does not send, is not counted (Django's log would show it).
    """

    statements = 0
    _installed = False

    @classmethod
    def install(cls) -> None:
        if cls._installed:
            return
        import psycopg
        from psycopg._connection_base import BaseConnection

        def counted(original):
            def wrapper(*args, **kwargs):
                cls.statements += 1
                return original(*args, **kwargs)
            return wrapper

        def counted_many(original):
            def wrapper(cursor, query, params_seq, *args, **kwargs):
                params_seq = list(params_seq)
                cls.statements += len(params_seq)
                return original(cursor, query, params_seq, *args, **kwargs)
            return wrapper

        psycopg.Cursor.execute = counted(psycopg.Cursor.execute)
        psycopg.Cursor.executemany = counted_many(psycopg.Cursor.executemany)
        BaseConnection._exec_command = counted(BaseConnection._exec_command)
        cls._installed = True


def measure(call: Callable[[], Any], *, counter: CommandCounter | None = None) -> Sample:
    StatementCounter.install()
    before, commands_before = StatementCounter.statements, counter.commands if counter else 0
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    commands = (counter.commands - commands_before) if counter else 0
    return Sample(seconds, StatementCounter.statements - before, commands, result)


def rss_kib() -> tuple[int, int]:
    """(current, peak) resident set size of this process, KiB (Linux ``/proc``)."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]

