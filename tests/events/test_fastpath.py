"""The Redis fast path on a real Redis: repeats and the token bucket in one script, failing open."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from django.test import override_settings

from events import fastpath


def scope() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_the_bucket_lets_the_rate_through_then_says_when_to_come_back():
    bucket = scope()
    decisions = [fastpath.delivery_admit(bucket, f"e-{i}", 5) for i in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert 1 <= decisions[-1].retry_after <= 12  # one token per 12 s at 5 a minute
    assert fastpath.delivery_admit(bucket, "e-7", 0).allowed  # 0: no limit


def test_concurrent_takers_never_spend_more_than_the_bucket_holds():
    bucket = scope()
    with ThreadPoolExecutor(max_workers=16) as pool:
        admitted = pool.map(lambda i: fastpath.delivery_admit(bucket, f"e-{i}", 10), range(40))
        allowed = sum(a.allowed for a in admitted)
    assert allowed == 10


def test_a_marked_event_is_a_repeat_and_draws_no_token():
    where = scope()
    assert fastpath.delivery_admit(where, "e-1", 1) == fastpath.Admission()
    fastpath.seen_mark(where, "e-1", 41)
    fastpath.seen_mark(where, "e-1", 99)  # NX: the first committed row's id stays
    assert [fastpath.delivery_admit(where, "e-1", 1).seen_id for _ in range(3)] == [41, 41, 41]
    assert fastpath.delivery_admit(where, "e-2", 1).allowed is False  # the one token went to e-1


def test_redis_down_or_off_fails_open():
    for url in ("redis://127.0.0.1:1/0", ""):
        with override_settings(TICKWISE={**fastpath.settings.TICKWISE, "EVENTS_REDIS_URL": url}):
            assert all(fastpath.delivery_admit(scope(), "e", 1).allowed for _ in range(3))
            fastpath.seen_mark("x", "y", 1)
            assert fastpath.delivery_admit("x", "y", 1).seen_id is None
