"""The embedded PostgreSQL server: initdb once, pg_ctl start/stop, one database.

PostgreSQL refuses to run as root, so when started by root the cluster is
owned by an unprivileged system user (``tickwise``) created on first use. That
user must be able to enter every folder above the state folder and the server
binaries; nothing here loosens a folder's permissions to make that so (see
docs/operations.md, "The state folder").
Durability settings are relaxed (``fsync=off``): this server is for one
developer machine and its tests, where a power cut loses nothing of value;
crash *of processes* — what the ledger guarantees are about — is unaffected.
"""
from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from .binaries import postgres_bin_dir
from .state import accepts_connections, free_port, pid_alive, read_json, read_pid, state_dir, write_json

DATABASE = "tickwise"
SUPERUSER = "postgres"
SYSTEM_USER = "tickwise"
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
    "-c max_connections=300 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off"
)


def _root() -> Path:
    return state_dir() / "postgres"


def _data() -> Path:
    return _root() / "data"


def _port() -> int | None:
    return read_json("postgres.json").get("port")


def url() -> str:
    return f"postgres://{SUPERUSER}@127.0.0.1:{_port()}/{DATABASE}"


def is_recorded_alive() -> bool:
    """Read-only: the state folder records a port and a live server process."""
    pid = read_pid(_data() / "postmaster.pid")
    return bool(pid and _port() and pid_alive(pid))


def is_running() -> bool:
    port = _port()
    return bool(port and is_recorded_alive() and accepts_connections(port))


def ensure_running() -> bool:
    """Start the server unless it runs; True when this call started it."""
    if is_running():
        return False
    _prepare_owner()
    if not (_data() / "PG_VERSION").exists():
        _run("initdb", "-D", str(_data()), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--no-sync")
    port = free_port(_port())
    write_json("postgres.json", {"port": port})
    _run("pg_ctl", "-D", str(_data()), "-l", str(_root() / "server.log"), "-w",
         "-t", "60", "-o", f"-p {port} {SERVER_OPTIONS}", "start")
    _create_database(port)
    return True


def stop() -> None:
    if (_data() / "postmaster.pid").exists():
        _run("pg_ctl", "-D", str(_data()), "-m", "fast", "-w", "-t", "60", "stop")


def _create_database(port: int) -> None:
    import psycopg

    dsn = f"host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


def _run(tool: str, *args: str) -> None:
    command = [str(postgres_bin_dir() / tool), *args]
    kwargs: dict = {"check": True, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    if os.geteuid() == 0:
        user = pwd.getpwnam(SYSTEM_USER)
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd=str(_root()))
    try:
        subprocess.run(command, **kwargs)
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"{tool} failed ({error.returncode}): {error.stdout.strip()}") from error


def _prepare_owner() -> None:
    _root().mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        SYSTEM_USER], check=True)
        user = pwd.getpwnam(SYSTEM_USER)
    for path in [_root(), *(p for p in _root().rglob("*"))]:
        os.chown(path, user.pw_uid, user.pw_gid)
    for path in (_root(), postgres_bin_dir()):
        _check_reachable(path, user)


def _check_reachable(path: Path, user: pwd.struct_passwd) -> None:
    """Fail with the folder to fix when the server user cannot reach ``path``.

    Checked up front because initdb's own error ("could not change directory")
    does not say which folder, and changing the permissions of folders this
    project does not own (a home folder, /tmp/pytest-of-root) is not ours to do.
    """
    for folder in reversed([path, *path.parents]):
        info = folder.stat()
        if info.st_uid == user.pw_uid:
            allowed = info.st_mode & 0o100
        elif info.st_gid == user.pw_gid:
            allowed = info.st_mode & 0o010
        else:
            allowed = info.st_mode & 0o001
        if not allowed:
            raise RuntimeError(
                f"the embedded PostgreSQL runs as the system user {SYSTEM_USER!r} (PostgreSQL refuses root), "
                f"who may not enter {folder}: allow it (chmod o+x {folder}) or set TICKWISE_STATE_DIR "
                "to a folder it can reach (docs/operations.md)"
            )
