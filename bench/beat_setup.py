"""Where the beat benchmark runs: its own PostgreSQL database and Redis database.

The benchmark never touches the development (``tickwise``) or test
(``test_tickwise``) databases, nor Redis databases 0 and 1: it drops and
recreates ``tickwise_bench`` and owns Redis database 2, so it can run while the
test suite and a local stack run on the same servers.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
BENCH_DATABASE = "tickwise_bench"
BENCH_REDIS_DB = 2
QUEUE = "tickwise"  # CELERY_TASK_DEFAULT_QUEUE: where every benchmark message lands


@dataclass(frozen=True)
class BenchUrls:
    database_url: str
    redis_url: str
    started: tuple[str, ...]  # embedded servers this process started (and stops)


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def bench_urls() -> BenchUrls:
    """The servers' URLs, re-pointed at the benchmark's own databases."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    started: tuple[str, ...] = ()
    if not (database_url and redis_url):
        from scheduler_project.embedded import ensure_servers

        servers = ensure_servers()
        database_url, redis_url = database_url or servers.database_url, redis_url or servers.redis_url
        started = servers.started
    return BenchUrls(_with_path(database_url, f"/{BENCH_DATABASE}"),
                     _with_path(redis_url, f"/{BENCH_REDIS_DB}"), started)


def _require_bench(urls: BenchUrls) -> None:
    # Everything below drops and flushes: refuse anything but the bench stores.
    if urlsplit(urls.database_url).path != f"/{BENCH_DATABASE}":
        raise SystemExit(f"refusing to use {urls.database_url}: not the {BENCH_DATABASE} database")
    if urlsplit(urls.redis_url).path != f"/{BENCH_REDIS_DB}":
        raise SystemExit(f"refusing to use {urls.redis_url}: not Redis database {BENCH_REDIS_DB}")


def database_recreate(urls: BenchUrls) -> None:
    """Drop and create ``tickwise_bench`` (migrations are applied afresh each run)."""
    import psycopg

    _require_bench(urls)
    maintenance = _with_path(urls.database_url, "/postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DATABASE}")


def django_start(urls: BenchUrls) -> None:
    """Point settings at the bench stores, set Django up and migrate."""
    _require_bench(urls)
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = urls.database_url, urls.redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler_project.settings")
    os.environ.setdefault("TICKWISE_LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def process_env(urls: BenchUrls) -> dict[str, str]:
    """Environment for beat and worker processes started by the benchmark."""
    path = os.pathsep.join([str(BENCH_DIR), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url,
            "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "TICKWISE_LOG_LEVEL": "WARNING"}


def redis_bench():
    """A client on the bench's Redis database (decoded strings)."""
    import redis
    from django.conf import settings

    if urlsplit(settings.CELERY_BROKER_URL).path != f"/{BENCH_REDIS_DB}":
        raise SystemExit("the broker is not the bench Redis database")
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, decode_responses=True)


def redis_flush() -> None:
    redis_bench().flushdb()


def queue_purge() -> int:
    """Drop every message the benchmark published (nothing consumes this queue)."""
    client = redis_bench()
    count = client.llen(QUEUE)
    client.delete(QUEUE, *client.keys(f"{QUEUE}\x06*"), "unacked", "unacked_index")
    return count


def quiet() -> None:
    """Each incumbent logs every send at INFO; thousands of lines would drown the tables."""
    for name in ("celery", "django_celery_beat", "redbeat", "tickwise"):
        logging.getLogger(name).setLevel(logging.WARNING)
