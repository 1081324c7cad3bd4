"""One pooled ``httpx.Client`` per process, shared by the adapters that POST over HTTP.

A worker runs one attempt after another; reusing the connection to an agent
saves a TCP (and TLS) handshake per run.

Celery's prefork pool forks its worker processes, and a connection pool copied
across a fork would let two processes write to one socket and read each
other's answers. So the client is made on first use in each process and kept
under that process's id: a forked child never uses its parent's client. The
child drops its copy unclosed, which only releases the child's duplicate file
descriptors; nothing is sent on the parent's connections.

Certificates are checked against the system's trust store (httpx would use
certifi's bundle instead), so an agent behind a private CA installed on the
host keeps working; ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` point elsewhere.
Proxies come from ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``.

Redirects are not followed: httpx would follow a 301/302/303 as a GET without
the body, so the agent would never receive the run while the call looked
successful. The caller turns a 3xx into a permanent error.

``TICKWISE_HTTP_KEEPALIVE_SECONDS`` (default 1.5) is how long an idle
connection is kept. It must stay below the agent servers' own idle timeout
(gunicorn 2 s, uvicorn and Node 5 s, nginx 75 s): a server that closes an idle
connection just as a run is sent on it makes the run look delivered-and-lost,
and an agent that does not dedupe by key then ends ``unknown``. Raise it when
every agent server keeps connections longer and runs to one agent are spaced
further apart than the default.
"""
from __future__ import annotations

import atexit
import math
import os
import ssl
import threading

import httpx

from .base import config_error

KEEPALIVE_ENV = "TICKWISE_HTTP_KEEPALIVE_SECONDS"
DEFAULT_KEEPALIVE_SECONDS = 1.5
# Each is capped by the run's timeout. Connecting is quick or not at all; the
# pool wait only matters when several threads of one process share the client.
CONNECT_SECONDS = 10.0
POOL_SECONDS = 5.0
MAX_CONNECTIONS = 20
MAX_IDLE_CONNECTIONS = 10

_clients: dict[int, httpx.Client] = {}
_lock = threading.Lock()


def http_client() -> httpx.Client:
    """This process's client, made on first use (so after any fork)."""
    client = _clients.get(os.getpid())
    if client is None:
        with _lock:
            client = _clients.get(os.getpid()) or _new_client()
            _clients[os.getpid()] = client
    return client


def request_timeout(seconds: float) -> httpx.Timeout:
    """Explicit limits for one request: reading and writing get the whole timeout."""
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_SECONDS), pool=min(seconds, POOL_SECONDS))


def http_client_close() -> None:
    """Close this process's client, if it made one; the next request makes a new one."""
    with _lock:
        client = _clients.pop(os.getpid(), None)
    if client is not None:
        client.close()


def keepalive_seconds() -> float:
    raw = os.environ.get(KEEPALIVE_ENV, "").strip()
    if not raw:
        return DEFAULT_KEEPALIVE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise config_error(f"{KEEPALIVE_ENV} must be a number of seconds, 0 or more (got {raw!r})")
    return value


def _new_client() -> httpx.Client:
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_IDLE_CONNECTIONS,
                          keepalive_expiry=keepalive_seconds())
    # The default timeout is never used (every request passes its own), but
    # an explicit one keeps a forgotten argument from meaning httpx's 5 s.
    return httpx.Client(follow_redirects=False, limits=limits, timeout=request_timeout(30.0),
                        verify=ssl.create_default_context())


def _after_fork_in_child() -> None:
    # The pid key already keeps the child off its parent's client; a lock
    # copied while another thread held it would never be released here.
    global _lock
    _lock = threading.Lock()
    _clients.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(http_client_close)
