"""Signed deliveries and the load that sends them: ``wrk`` for throughput, a paced Python sender for latency.

Every delivery is a Standard Webhooks request signed by hand (HMAC-SHA256 over
``id.timestamp.body`` with the base64 key, as a sender computes it), made just
before its burst so its timestamp is inside the tolerance. ``wrk`` sends them
from a Lua table, each once (a burst's table holds more than it can send).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import percentile


@dataclass(frozen=True)
class Delivery:
    msg_id: str
    timestamp: str
    signature: str
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        return {"webhook-id": self.msg_id, "webhook-timestamp": self.timestamp,
                "webhook-signature": self.signature, "content-type": "application/json"}


@dataclass(frozen=True)
class Burst:
    rps: float
    responses: int
    errors: int  # non-2xx answers and socket errors
    p50_ms: float
    p99_ms: float


def deliveries_sign(count: int, *, key_b64: str, event_type: str = "bench.event") -> list[Delivery]:
    key, stamp, prefix = base64.b64decode(key_b64), str(int(time.time())), uuid.uuid4().hex[:12]
    made = []
    for i in range(count):
        msg_id = f"msg_{prefix}_{i}"
        body = json.dumps({"type": event_type, "data": {"n": i, "repo": "web"}}, separators=(",", ":")).encode()
        digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        made.append(Delivery(msg_id, stamp, "v1," + base64.b64encode(digest).decode(), body))
    return made


# The deliveries are read from a file, one tab-separated line each: a Lua table
# literal that large would pass LuaJIT's limit of constants per function.
_WRK = """
local path = "%(path)s"
local reqs = {}
for line in io.lines("%(data)s") do
  local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
  reqs[#reqs + 1] = {id, ts, sig, body}
end
local n = 0
function request()
  n = n + 1
  local r = reqs[((n - 1) %% #reqs) + 1]
  return wrk.format("POST", path, {["webhook-id"] = r[1], ["webhook-timestamp"] = r[2],
    ["webhook-signature"] = r[3], ["Content-Type"] = "application/json"}, r[4])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %%f %%f %%f %%f %%f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_burst(base: str, path: str, deliveries: list[Delivery], *, seconds: float, connections: int) -> Burst:
    with tempfile.TemporaryDirectory(prefix="bench-events-") as folder:
        data, lua = Path(folder) / "deliveries.tsv", Path(folder) / "load.lua"
        data.write_text("".join(f"{d.msg_id}\t{d.timestamp}\t{d.signature}\t{d.body.decode()}\n"
                                for d in deliveries))
        lua.write_text(_WRK % {"path": path, "data": data})
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s",
                              str(lua), base], capture_output=True, text=True, timeout=seconds + 60)
    line = next((row for row in out.stdout.splitlines() if row.startswith("WRK ")), None)
    if out.returncode != 0 or line is None or "error" in out.stderr.lower():
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}{out.stderr}")
    requests, duration_us, errors, p50_us, p99_us = (float(value) for value in line.split()[1:])
    return Burst(rps=requests / (duration_us / 1e6), responses=int(requests), errors=int(errors),
                 p50_ms=p50_us / 1000, p99_ms=p99_us / 1000)


def paced_send(url: str, deliveries: list[Delivery], *, rate: float, senders: int = 16) -> list[int]:
    """POST each delivery at its slot (``rate`` a second) from ``senders`` threads; returns the statuses."""
    statuses: list[int] = [0] * len(deliveries)
    began = time.monotonic() + 0.2
    lock = threading.Lock()
    cursor = {"next": 0}

    def send() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    i = cursor["next"]
                    cursor["next"] += 1
                if i >= len(deliveries):
                    return
                time.sleep(max(0.0, began + i / rate - time.monotonic()))
                try:
                    statuses[i] = client.post(url, content=deliveries[i].body,
                                              headers=deliveries[i].headers).status_code
                except httpx.HTTPError:
                    statuses[i] = -1
    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def latency_summary(latencies_ms: list[float]) -> tuple[float, float]:
    return percentile(latencies_ms, 0.5), percentile(latencies_ms, 0.99)
