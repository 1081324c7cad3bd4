"""Load on loopback: ``wrk`` (or Python threads without it) for throughput, one Python client for latency.

gunicorn's sync workers close the connection after every response, so each
request, from either client, is a new TCP connection on loopback.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from bench.common import percentile


@dataclass(frozen=True)
class Target:
    """One endpoint as one implementation serves it: the paths to cycle through and what it answers."""

    method: str
    paths: tuple[str, ...]
    status: int
    body: bytes | None = None

    def path(self, i: int) -> str:
        return self.paths[i % len(self.paths)]


@dataclass
class Burst:
    """A throughput sample: every response in a fixed time, from several connections at once."""

    rps: float
    responses: int
    unexpected: int  # responses with another status, and socket errors
    p50_ms: float  # latency under this load
    p99_ms: float


@dataclass
class Sequential:
    """A latency sample: requests one after another on one client, nothing else in flight."""

    latencies_ms: list[float] = field(default_factory=list)
    answered: list[tuple[int, datetime]] = field(default_factory=list)  # (id in the body, when it arrived)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


_WRK_SCRIPT = """
local paths = {%(paths)s}
local n = 0
wrk.method = "%(method)s"
wrk.headers["Authorization"] = "Bearer %(token)s"
%(body)s
function request()
  n = n + 1
  return wrk.format(nil, paths[(n %% #paths) + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %%f %%f %%f %%f %%f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_burst(base: str, target: Target, *, token: str, seconds: float, connections: int) -> Burst:
    """``wrk`` on one thread with ``connections`` connections for ``seconds``."""
    body = ""
    if target.body is not None:
        body = (f'wrk.body = "{target.body.decode()}"\n'
                'wrk.headers["Content-Type"] = "application/json"')
    script = _WRK_SCRIPT % {"paths": ", ".join(f'"{p}"' for p in target.paths), "method": target.method,
                            "token": token, "body": body}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-api-") as lua:
        lua.write(script)
        lua.flush()
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", lua.name,
                              base], capture_output=True, text=True, timeout=seconds + 60)
    line = next((row for row in out.stdout.splitlines() if row.startswith("WRK ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}{out.stderr}")
    requests, duration_us, errors, p50_us, p99_us = (float(value) for value in line.split()[1:])
    return Burst(rps=requests / (duration_us / 1e6), responses=int(requests), unexpected=int(errors),
                 p50_ms=p50_us / 1000, p99_ms=p99_us / 1000)


def python_burst(base: str, target: Target, *, token: str, seconds: float, connections: int) -> Burst:
    """The same as ``wrk_burst`` from ``connections`` threads, each with its own client (slower: the GIL)."""
    latencies: list[float] = []
    counts = {"unexpected": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def load(offset: int) -> None:
        mine, bad, i = [], 0, offset
        with httpx.Client(base_url=base, headers=_headers(token, target), timeout=10) as client:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                try:
                    ok = client.request(target.method, target.path(i), content=target.body).status_code == target.status
                except httpx.HTTPError:
                    ok = False
                mine.append((time.perf_counter() - began) * 1000)
                bad += not ok
                i += connections
        with lock:
            latencies.extend(mine)
            counts["unexpected"] += bad

    began = time.monotonic()
    threads = [threading.Thread(target=load, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    return Burst(rps=len(latencies) / elapsed, responses=len(latencies), unexpected=counts["unexpected"],
                 p50_ms=percentile(latencies, 0.5), p99_ms=percentile(latencies, 0.99))


def sequential(base: str, target: Target, *, token: str, count: int, seconds: float = float("inf"),
               start: int = 0) -> Sequential:
    """``count`` requests one at a time, fewer if ``seconds`` run out first; each must answer ``target.status``."""
    sample = Sequential()
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base, headers=_headers(token, target), timeout=30) as client:
        for i in range(start, start + count):
            if time.monotonic() > deadline:
                break
            began = time.perf_counter()
            response = client.request(target.method, target.path(i), content=target.body)
            sample.latencies_ms.append((time.perf_counter() - began) * 1000)
            if response.status_code != target.status:
                raise RuntimeError(f"{target.method} {target.path(i)} answered {response.status_code}, "
                                   f"not {target.status}: {response.text[:500]}")
            if target.method == "POST":
                sample.answered.append((int(response.json()["id"]), datetime.now(UTC)))
    return sample


def _headers(token: str, target: Target) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if target.body is not None:
        headers["Content-Type"] = "application/json"
    return headers


