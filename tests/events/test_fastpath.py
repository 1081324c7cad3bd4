"""The Redis fast path on a real Redis: the token bucket in one script, the seen keys, failing open."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from django.test import override_settings

from events import fastpath


def scope() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_the_bucket_lets_the_rate_through_then_says_when_to_come_back():
    bucket = scope()
    decisions = [fastpath.rate_take(bucket, 5) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert 1 <= decisions[-1].retry_after <= 12  # one token per 12 s at 5 a minute


def test_concurrent_takers_never_spend_more_than_the_bucket_holds():
    bucket = scope()
    with ThreadPoolExecutor(max_workers=16) as pool:
        allowed = sum(d.allowed for d in pool.map(lambda _: fastpath.rate_take(bucket, 10), range(40)))
    assert allowed == 10


def test_seen_keys_answer_only_for_marked_events():
    where = scope()
    assert fastpath.seen_lookup(where, "e-1") is None
    fastpath.seen_mark(where, "e-1", 41)
    fastpath.seen_mark(where, "e-1", 99)  # NX: the first committed row's id stays
    assert fastpath.seen_lookup(where, "e-1") == 41
    assert fastpath.seen_lookup(where, "e-2") is None


def test_redis_down_or_off_fails_open():
    for url in ("redis://127.0.0.1:1/0", ""):
        with override_settings(TICKWISE={**fastpath.settings.TICKWISE, "EVENTS_REDIS_URL": url}):
            assert all(fastpath.rate_take(scope(), 1).allowed for _ in range(3))
            fastpath.seen_mark("x", "y", 1)
            assert fastpath.seen_lookup("x", "y") is None
