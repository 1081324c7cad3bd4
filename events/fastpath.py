"""Redis in front of the event ledger: repeats answered without a database write, floods refused.

Redis makes it fast; PostgreSQL keeps it true.

**Duplicates.** After an event's row has committed, ``seen_mark`` sets
``SET NX`` on (source, event id) with a TTL of ``DEDUP_TTL`` (4 days: Standard
Webhooks senders retry for about 75 hours, GitHub redelivers for 3 days). A
repeat finds the key and is answered 200 without touching PostgreSQL. The
lookup and the rate limit's token are one Lua script, one round trip
(``delivery_admit``). The key is only ever set for a committed row, so a key
never stands for an event that was not stored; the TTL is shorter than the
retention (at least 7 days), so a key never outlives its row. A key that is
missing (expired, evicted, Redis flushed or down) costs one insert that the
unique constraint ``event_once_per_source`` turns into "duplicate": the
constraint is the guarantee, the key is an optimisation.

**Rate limit.** A token bucket per source (capacity and refill
``rate_per_minute`` per minute), taken in ONE Lua script, so concurrent web
workers cannot both spend the last token. Only deliveries that would be
stored draw a token (a repeat answered from the key does not). An empty
bucket answers 429 with ``Retry-After`` (seconds until one token is back).

**Redis unavailable** (down, timing out, or ``TICKWISE_EVENTS_REDIS_URL``
empty): both fail open. Every delivery takes the database path (a repeat is
found by the constraint) and no rate limit applies; each failure is logged
(``tickwise.events``). An event is never refused or lost because Redis is.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass

import redis
from django.conf import settings

log = logging.getLogger("tickwise.events")

DEDUP_TTL = 4 * 24 * 3600  # seconds; below the 7-day retention floor, see above
PREFIX = "tickwise:events"
TIMEOUT = 0.5  # seconds: a slow Redis must not hold a sender longer than the database path would

# One round trip per delivery: is it a known repeat, and if not, may it be stored?
# KEYS[1] the seen key, KEYS[2] the source's bucket; ARGV[1] the bucket's capacity
# (= tokens per minute; 0: no limit). Redis's own clock, so every web node agrees.
# Returns {2, stored id} for a repeat, {1, 0} when a token was taken (or there is
# no limit), {0, ms until a token is back} when the bucket is empty.
ADMIT = """
local seen = redis.call('GET', KEYS[1])
if seen then
  return {2, tonumber(seen)}
end
local capacity = tonumber(ARGV[1])
if capacity <= 0 then
  return {1, 0}
end
local per_ms = capacity / 60000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[2], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[2], 61000)
return {allowed, wait}
"""


@dataclass(frozen=True)
class Admission:
    seen_id: int | None = None  # a known repeat: the stored event's id
    allowed: bool = True  # False: the source's rate limit refuses it
    retry_after: int = 0  # whole seconds, at least 1 when refused


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)


def client() -> redis.Redis | None:
    url = settings.TICKWISE["EVENTS_REDIS_URL"]
    return _client(url) if url else None


def _namespace() -> str:
    # Stacks sharing one Redis (deployments, test runs, the benchmark) each count
    # their own events: ids repeat across databases.
    return f"{PREFIX}:{settings.DATABASES['default']['NAME']}:{settings.CELERY_TASK_DEFAULT_QUEUE}"


def _seen_key(scope: str, event_id: str) -> str:
    # Hashed: an event id is the sender's text, up to 200 characters.
    return f"{_namespace()}:seen:{scope}:{hashlib.sha256(event_id.encode()).hexdigest()}"


def delivery_admit(scope: str, event_id: str, per_minute: int) -> Admission:
    """A known repeat (answer it from here), or whether a new delivery may draw a token; fails open."""
    found = client()
    if found is None:
        return Admission()
    try:
        verdict, value = found.eval(ADMIT, 2, _seen_key(scope, event_id), f"{_namespace()}:rate:{scope}",
                                    max(0, per_minute))
    except redis.RedisError as error:
        log.warning("event fast path unavailable, using the database without a rate limit: %s", error)
        return Admission()
    if verdict == 2:
        return Admission(seen_id=int(value))
    return Admission(allowed=bool(verdict), retry_after=0 if verdict else max(1, -(-int(value) // 1000)))


def seen_mark(scope: str, event_id: str, stored_id: int) -> None:
    """Remember a committed event; call only after its row committed (see the module docstring)."""
    found = client()
    if found is None:
        return
    try:
        found.set(_seen_key(scope, event_id), stored_id, nx=True, ex=DEDUP_TTL)
    except redis.RedisError as error:
        log.warning("could not remember event %s in the fast path: %s", stored_id, error)
