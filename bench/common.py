"""What the benchmarks share: their own stores on the servers, child processes, medians.

A benchmark runs against its own PostgreSQL database (``tickwise_bench*``) and
its own Redis database (2 and up) on the servers named by ``DATABASE_URL`` and
``REDIS_URL``, or on the embedded servers, started when those are unset and
stopped again at the end by the benchmark that started them. It never touches
the development (``tickwise``) or test databases, nor Redis databases 0 and 1,
so it can run beside the test suite and a local stack.
"""
from __future__ import annotations

import os
import platform
import signal
import statistics
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import redis

ROOT = Path(__file__).resolve().parent.parent
DATABASE_PREFIX = "tickwise_bench"
FIRST_REDIS_DB = 2  # 0 is a local stack's, 1 the test suite's

T = TypeVar("T")

# --- stores: servers and databases -----------------------------------------------


@dataclass(frozen=True)
class Stores:
    database_url: str
    redis_url: str
    started: tuple[str, ...]  # embedded servers this process started (and stops)


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path, parts.query, parts.fragment))


# Benchmarks drop, truncate and flush: these refuse anything but a benchmark's own stores.

def _require_bench_database(url: str) -> None:
    if not urlsplit(url).path.lstrip("/").startswith(DATABASE_PREFIX):
        raise SystemExit(f"refusing to use {url}: not a {DATABASE_PREFIX}* database")


def _require_bench_redis(url: str) -> None:
    number = urlsplit(url).path.lstrip("/")
    if not (number.isdigit() and int(number) >= FIRST_REDIS_DB):
        raise SystemExit(f"refusing to use {url}: not a benchmark Redis database ({FIRST_REDIS_DB} and up)")


def stores_locate(database: str, redis_db: int) -> Stores:
    """The servers' URLs re-pointed at a benchmark's own databases; starts the embedded servers if unset."""
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    started: tuple[str, ...] = ()
    if not (database_url and redis_url):
        from scheduler_project.embedded import ensure_servers

        servers = ensure_servers()
        database_url, redis_url = database_url or servers.database_url, redis_url or servers.redis_url
        started = servers.started
    stores = Stores(_with_path(database_url, database), _with_path(redis_url, str(redis_db)), started)
    _require_bench_database(stores.database_url)
    _require_bench_redis(stores.redis_url)
    return stores


def database_create(stores: Stores, *, fresh: bool) -> None:
    """Create the benchmark's database; ``fresh`` drops it first."""
    import psycopg

    _require_bench_database(stores.database_url)
    name = urlsplit(stores.database_url).path.lstrip("/")
    with psycopg.connect(_with_path(stores.database_url, "postgres"), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def django_start(stores: Stores, **env: str) -> None:
    """Point the settings at the stores (plus ``env``), set Django up and migrate.

    The settings are read from ``os.environ``, which the benchmark's child
    processes inherit through ``process_env``.
    """
    os.environ.update(DATABASE_URL=stores.database_url, REDIS_URL=stores.redis_url, **env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler_project.settings")
    os.environ.pop("TICKWISE_FAULTS", None)  # a benchmark measures the code, not injected faults
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


@contextmanager
def bench_stores(database: str, redis_db: int, *, fresh: bool, **env: str) -> Iterator[Stores]:
    """The benchmark's stores, Django set up on them; the embedded servers this started are stopped after."""
    stores = stores_locate(database, redis_db)
    try:
        database_create(stores, fresh=fresh)
        django_start(stores, **env)
        yield stores
    finally:
        if stores.started:
            from scheduler_project.embedded import stop_servers

            stop_servers(stores.started)


def redis_bench(*, decode: bool = True) -> redis.Redis:
    """A client on the benchmark's Redis database (the broker's, from the settings)."""
    import redis
    from django.conf import settings

    _require_bench_redis(settings.CELERY_BROKER_URL)
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, decode_responses=decode)


def queues_purge(client: redis.Redis, *queues: str) -> None:
    """Drop every message in ``queues`` (priority sub-queues included) and kombu's unacked bookkeeping."""
    priority = [key for queue in queues for key in client.keys(f"{queue}\x06*")]
    client.delete(*queues, *priority, "unacked", "unacked_index", "unacked_mutex")


# --- child processes ------------------------------------------------------------


def process_env() -> dict[str, str]:
    """The environment of every process a benchmark starts: its own, once ``django_start`` has set it."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def process_start(command: list[str], *, env: dict[str, str], log: Path, ready: str,
                  timeout: float = 60) -> subprocess.Popen:
    """Start ``command`` leading its own process group, output to ``log``; return once ``ready`` is logged."""
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            processes_stop([proc])
            raise RuntimeError(f"{' '.join(command[1:6])} did not start; see {log}")
        time.sleep(0.05)
    return proc


def processes_stop(procs: Sequence[subprocess.Popen], *, grace: float = 15) -> None:
    """SIGTERM each process group, SIGKILL what is left after ``grace`` seconds (pool children included)."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=30)
    for proc in procs:  # pool children a parent left behind
        _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


# --- figures ---------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    """The median; NaN when there are no values."""
    values = list(values)
    return statistics.median(values) if values else float("nan")


def percentile(values: Iterable[float], fraction: float) -> float:
    """The value at ``fraction`` of the sorted values (nearest rank, no interpolation); NaN if none."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def machine(*packages: str) -> str:
    """The machine, Python and the given packages' versions, for a benchmark's header."""
    versions = [f"{package} {metadata.version(package)}" for package in packages]
    return ", ".join([f"{platform.machine()}", f"{os.cpu_count()} cores",
                      f"{platform.system()} {platform.release()}", f"Python {platform.python_version()}",
                      *versions])
