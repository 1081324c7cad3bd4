"""Webhook ingress through a live gunicorn: each kind of request gets its documented status.

The senders sign the way the real ones do, written here from the specs
(Standard Webhooks: base64 HMAC-SHA256 over ``id.timestamp.body`` with the
base64-decoded ``whsec_`` key; GitHub: ``sha256=`` + hex HMAC-SHA256 of the
body), never through the ``standardwebhooks`` package or our verifier.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from events.models import InboundEvent, SourceKind, Subscription, WebhookSource
from runs.models import Run, RunState
from schedules.models import Agent
from tests.conftest import Stack, _database_url
from tests.shells.api.conftest import assert_problem, free_port, start_api
from workspaces.models import Membership, Role, Workspace

KEY_NEW = base64.b64encode(b"new-secret-key-0123456789abcdef!").decode()
KEY_OLD = base64.b64encode(b"old-secret-key-0123456789abcdef!").decode()
KEY_FORGED = base64.b64encode(b"not-the-secret-0123456789abcdef!").decode()
SECRETS = {"HOOK_TEST_NEW": f"whsec_{KEY_NEW}", "HOOK_TEST_OLD": f"whsec_{KEY_OLD}",
           "HOOK_TEST_GITHUB": "gh-secret-It's a secret to everybody", "HOOK_TEST_HMAC": "plain-hmac-secret"}


def _server(django_db_setup, tmp_path_factory, name: str, extra: dict[str, str]) -> Iterator[str]:
    env = {**os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": settings.CELERY_BROKER_URL,
           "PYTHONUNBUFFERED": "1", **SECRETS, **extra}
    server = Stack(env, tmp_path_factory.mktemp(name))
    try:
        yield start_api(server, name)
    finally:
        server.stop_all()


@pytest.fixture(scope="module")
def hooks_url(django_db_setup, tmp_path_factory) -> Iterator[str]:
    """A gunicorn (2 workers) whose environment holds the test secrets."""
    yield from _server(django_db_setup, tmp_path_factory, "hooks", {})


@pytest.fixture
def client(hooks_url, transactional_db) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hooks_url, timeout=30) as http:
        yield http


# --- senders, from the specs ----------------------------------------------------------


def standard_headers(body: bytes, key_b64: str, *, msg_id: str | None = None, at: float | None = None,
                     extra_keys: tuple[str, ...] = ()) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(at if at is not None else time.time()))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signatures = [
        "v1," + base64.b64encode(hmac.new(base64.b64decode(key), signed, hashlib.sha256).digest()).decode()
        for key in (*extra_keys, key_b64)]
    return {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": " ".join(signatures),
            "content-type": "application/json"}


def github_headers(body: bytes, secret: str, *, delivery: str | None = None,
                   event: str = "push") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-GitHub-Event": event, "X-GitHub-Hook-ID": "292430182", "content-type": "application/json",
            "User-Agent": "GitHub-Hookshot/044aadd"}


def body_of(**fields: Any) -> bytes:
    return json.dumps({"type": "deploy.finished", "data": {"repo": "web"}, **fields}).encode()


def source(slug: str = "stdhook", **fields: Any) -> WebhookSource:
    values: dict[str, Any] = {"kind": SourceKind.STANDARD, "secrets": [{"env": "HOOK_TEST_NEW", "retire_at": None}]}
    return WebhookSource.objects.create(slug=slug, **{**values, **fields})


def override_tickwise(**values: Any) -> Any:
    return override_settings(TICKWISE={**settings.TICKWISE, **values})


def rows(slug: str) -> int:
    return InboundEvent.objects.filter(source__slug=slug).count()


# --- standard ---------------------------------------------------------------------------


def test_a_valid_standard_delivery_is_stored_once_and_a_replay_is_a_duplicate(client):
    source()
    body = body_of(subject="deploy-7")
    headers = standard_headers(body, KEY_NEW, msg_id="msg_one")
    first = client.post("/hooks/stdhook", content=body, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json()["duplicate"] is False and first.json()["event_id"] == "msg_one"
    event = InboundEvent.objects.get(pk=first.json()["id"])
    assert (event.type, event.subject, event.secret_env, event.depth) == (
        "deploy.finished", "deploy-7", "HOOK_TEST_NEW", 0)
    assert event.payload["data"] == {"repo": "web"} and len(event.chain_id) == 32
    assert event.headers["webhook-id"] == "msg_one" and "webhook-signature" not in event.headers
    assert event.occurred_at is not None

    again = client.post("/hooks/stdhook", content=body, headers=headers)
    assert again.status_code == 200 and again.json() == {**first.json(), "duplicate": True}
    # The same id with a fresh timestamp (the sender's retry) is the same event too.
    retry = client.post("/hooks/stdhook", content=body, headers=standard_headers(body, KEY_NEW, msg_id="msg_one"))
    assert retry.status_code == 200 and retry.json()["id"] == event.pk
    assert rows("stdhook") == 1


def test_forged_unsigned_stale_future_and_malformed_deliveries_are_refused_and_store_nothing(client):
    source()
    body = body_of()
    now = time.time()
    forged = client.post("/hooks/stdhook", content=body, headers=standard_headers(body, KEY_FORGED))
    assert_problem(forged, 401, "signature-invalid")
    assert "HOOK_TEST" not in forged.text  # no hint which secret failed
    tampered = standard_headers(body, KEY_NEW)
    assert_problem(client.post("/hooks/stdhook", content=body + b" ", headers=tampered), 401, "signature-invalid")
    unsigned = client.post("/hooks/stdhook", content=body, headers={"content-type": "application/json"})
    assert_problem(unsigned, 401, "signature-invalid")
    stale = standard_headers(body, KEY_NEW, at=now - 301)
    assert_problem(client.post("/hooks/stdhook", content=body, headers=stale), 400, "timestamp-invalid")
    future = standard_headers(body, KEY_NEW, at=now + 301)
    assert_problem(client.post("/hooks/stdhook", content=body, headers=future), 400, "timestamp-invalid")
    unreadable = {**standard_headers(body, KEY_NEW), "webhook-timestamp": "yesterday"}
    assert_problem(client.post("/hooks/stdhook", content=body, headers=unreadable), 400, "timestamp-invalid")
    not_json = b"this is not json"
    problem = assert_problem(client.post("/hooks/stdhook", content=not_json,
                                         headers=standard_headers(not_json, KEY_NEW)), 400, "malformed-event")
    assert problem["errors"][0]["field"] == "body"
    nul = b'{"type": "a.b", "data": "\\u0000"}'
    assert_problem(client.post("/hooks/stdhook", content=nul, headers=standard_headers(nul, KEY_NEW)),
                   400, "malformed-event")
    assert rows("stdhook") == 0


def test_a_rotated_secret_verifies_until_its_retirement(client):
    later = (timezone.now() + timedelta(days=1)).isoformat()
    source(secrets=[{"env": "HOOK_TEST_OLD", "retire_at": later}, {"env": "HOOK_TEST_NEW", "retire_at": None}])
    body = body_of()
    by_old = client.post("/hooks/stdhook", content=body, headers=standard_headers(body, KEY_OLD))
    by_new = client.post("/hooks/stdhook", content=body, headers=standard_headers(body, KEY_NEW))
    # A sender in the middle of a rotation signs with both: one signature per key in the header.
    by_both = client.post("/hooks/stdhook", content=body,
                          headers=standard_headers(body, KEY_NEW, extra_keys=(KEY_FORGED, KEY_OLD)))
    assert [r.status_code for r in (by_old, by_new, by_both)] == [202, 202, 202]
    envs = [InboundEvent.objects.get(pk=r.json()["id"]).secret_env for r in (by_old, by_new)]
    assert envs == ["HOOK_TEST_OLD", "HOOK_TEST_NEW"]

    past = (timezone.now() - timedelta(seconds=1)).isoformat()
    WebhookSource.objects.filter(slug="stdhook").update(
        secrets=[{"env": "HOOK_TEST_OLD", "retire_at": past}, {"env": "HOOK_TEST_NEW", "retire_at": None}])
    retired = client.post("/hooks/stdhook", content=body, headers=standard_headers(body, KEY_OLD))
    assert_problem(retired, 401, "signature-invalid")
    assert client.post("/hooks/stdhook", content=body, headers=standard_headers(body, KEY_NEW)).status_code == 202
    assert rows("stdhook") == 4


def test_oversized_unknown_and_disabled(client):
    source(body_limit_bytes=1024)
    source("offhook", enabled=False)
    big = body_of(data={"blob": "x" * 2000})
    assert_problem(client.post("/hooks/stdhook", content=big, headers=standard_headers(big, KEY_NEW)),
                   413, "payload-too-large")
    body = body_of()
    assert_problem(client.post("/hooks/nohook", content=body, headers=standard_headers(body, KEY_NEW)),
                   404, "not-found")
    assert_problem(client.post("/hooks/offhook", content=body, headers=standard_headers(body, KEY_NEW)),
                   410, "source-disabled")
    chunked = client.post("/hooks/stdhook", content=iter([body]), headers=standard_headers(body, KEY_NEW))
    assert assert_problem(chunked, 400, "malformed-event")["errors"][0]["field"] == "Content-Length"
    assert InboundEvent.objects.count() == 0


def test_the_same_event_posted_20_times_at_once_is_one_row(client, hooks_url):
    source()
    body = body_of()
    headers = standard_headers(body, KEY_NEW, msg_id="msg_race")

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{hooks_url}/hooks/stdhook", content=body, headers=headers, timeout=30)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(post, range(20)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 19 + [202], codes
    assert len({a.json()["id"] for a in answers}) == 1
    assert rows("stdhook") == 1


# --- github and hmac ----------------------------------------------------------------------


def test_a_github_sender(client):
    source("gh", kind=SourceKind.GITHUB, secrets=[{"env": "HOOK_TEST_GITHUB", "retire_at": None}])
    body = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "acme/web"}}).encode()
    headers = github_headers(body, SECRETS["HOOK_TEST_GITHUB"], delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    first = client.post("/hooks/gh", content=body, headers=headers)
    assert first.status_code == 202, first.text
    event = InboundEvent.objects.get(pk=first.json()["id"])
    assert (event.type, event.event_id) == ("github.push", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert event.headers["x-github-event"] == "push" and "x-hub-signature-256" not in event.headers
    redelivered = client.post("/hooks/gh", content=body, headers=headers)
    assert redelivered.status_code == 200 and redelivered.json()["duplicate"] is True
    forged = github_headers(body, "wrong secret")
    assert_problem(client.post("/hooks/gh", content=body, headers=forged), 401, "signature-invalid")
    no_delivery = {k: v for k, v in github_headers(body, SECRETS["HOOK_TEST_GITHUB"]).items()
                   if k != "X-GitHub-Delivery"}
    assert_problem(client.post("/hooks/gh", content=body, headers=no_delivery), 400, "malformed-event")
    # GitHub's form-encoded content type: the JSON travels in the payload field, signed as sent.
    form = ("payload=" + quote(body.decode(), safe="")).encode()
    form_headers = {**github_headers(form, SECRETS["HOOK_TEST_GITHUB"], event="ping"),
                    "content-type": "application/x-www-form-urlencoded"}
    pinged = client.post("/hooks/gh", content=form, headers=form_headers)
    assert pinged.status_code == 202, pinged.text
    assert InboundEvent.objects.get(pk=pinged.json()["id"]).payload["repository"]["full_name"] == "acme/web"
    assert rows("gh") == 2


def test_an_hmac_sender_with_and_without_an_id_header(client):
    secret = SECRETS["HOOK_TEST_HMAC"]
    source("plain", kind=SourceKind.HMAC, secrets=[{"env": "HOOK_TEST_HMAC", "retire_at": None}],
           signature_header="X-Acme-Signature", id_header="X-Acme-Delivery")
    source("hashed", kind=SourceKind.HMAC, secrets=[{"env": "HOOK_TEST_HMAC", "retire_at": None}],
           signature_header="X-Acme-Signature", require_json=False)
    body = body_of()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    with_id = client.post("/hooks/plain", content=body,
                          headers={"X-Acme-Signature": f"sha256={digest}", "X-Acme-Delivery": "d-1"})
    assert with_id.status_code == 202 and with_id.json()["event_id"] == "d-1"
    assert InboundEvent.objects.get(pk=with_id.json()["id"]).headers["x-acme-delivery"] == "d-1"
    text = b"plain text, no JSON"
    bare = hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()
    hashed = client.post("/hooks/hashed", content=text, headers={"X-Acme-Signature": bare})
    assert hashed.status_code == 202 and hashed.json()["event_id"] == hashlib.sha256(text).hexdigest()
    event = InboundEvent.objects.get(pk=hashed.json()["id"])
    assert (event.type, event.payload) == ("hashed", {"body": "plain text, no JSON"})
    assert client.post("/hooks/hashed", content=text, headers={"X-Acme-Signature": bare}).status_code == 200
    assert_problem(client.post("/hooks/plain", content=body, headers={"X-Acme-Signature": "0" * 64,
                                                                      "X-Acme-Delivery": "d-2"}),
                   401, "signature-invalid")


# --- causation, rate limit, routing hand-off --------------------------------------------


def test_chain_headers_carry_causation_only_within_the_workspace(client):
    src = source()
    mine = Agent.objects.create(name="mine", workspace_id=src.workspace_id)
    elsewhere = Agent.objects.create(name="theirs", workspace=Workspace.objects.create(slug="other", name="Other"))
    body = body_of()
    chained = {**standard_headers(body, KEY_NEW), "tickwise-chain-id": "c" * 32, "tickwise-depth": "3",
               "tickwise-actor": str(mine.pk)}
    event = InboundEvent.objects.get(pk=client.post("/hooks/stdhook", content=body, headers=chained).json()["id"])
    assert (event.chain_id, event.depth, event.actor_id) == ("c" * 32, 4, mine.pk)
    foreign = {**standard_headers(body, KEY_NEW), "tickwise-depth": "0", "tickwise-actor": str(elsewhere.pk)}
    event = InboundEvent.objects.get(pk=client.post("/hooks/stdhook", content=body, headers=foreign).json()["id"])
    assert (event.depth, event.actor_id) == (1, None)
    bad = {**standard_headers(body, KEY_NEW), "tickwise-depth": "-1"}
    problem = assert_problem(client.post("/hooks/stdhook", content=body, headers=bad), 400, "malformed-event")
    assert problem["errors"][0]["field"] == "tickwise-depth"


def test_a_flood_is_refused_with_retry_after(client):
    source(rate_per_minute=3)
    codes = []
    for _ in range(4):
        body = body_of()
        codes.append(client.post("/hooks/stdhook", content=body, headers=standard_headers(body, KEY_NEW)))
    assert [r.status_code for r in codes[:3]] == [202, 202, 202]
    assert_problem(codes[3], 429, "throttled")
    assert int(codes[3].headers["Retry-After"]) >= 1
    assert rows("stdhook") == 3


def test_a_stored_event_is_handed_to_routing_after_commit(client):
    source()
    body = body_of()
    stored = client.post("/hooks/stdhook", content=body, headers=standard_headers(body, KEY_NEW)).json()["id"]
    client.post("/hooks/stdhook", content=body, headers=standard_headers(body, KEY_NEW))  # another event
    queued = redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange(settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1)
    routed = [json.loads(base64.b64decode(json.loads(m)["body"])) for m in queued
              if json.loads(m)["headers"].get("task") == "events.route"]
    assert [stored] in [args for args, _kwargs, _embed in routed]


# --- Redis unavailable -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_redis_url(django_db_setup, tmp_path_factory) -> Iterator[str]:
    """A gunicorn whose fast path points at a port nothing listens on."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    yield from _server(django_db_setup, tmp_path_factory, "hooks-no-redis", {"TICKWISE_EVENTS_REDIS_URL": dead})


def test_without_redis_events_are_still_stored_once_through_the_database(no_redis_url, transactional_db):
    source(rate_per_minute=1)  # the limit fails open with Redis: both events pass
    body, other = body_of(), body_of(n=2)
    headers = standard_headers(body, KEY_NEW)
    with httpx.Client(base_url=no_redis_url, timeout=30) as http:
        first = http.post("/hooks/stdhook", content=body, headers=headers)
        again = http.post("/hooks/stdhook", content=body, headers=headers)
        second = http.post("/hooks/stdhook", content=other, headers=standard_headers(other, KEY_NEW))
    assert (first.status_code, again.status_code, second.status_code) == (202, 200, 202)
    assert again.json()["id"] == first.json()["id"]
    assert rows("stdhook") == 2


# --- first-party events ---------------------------------------------------------------------


def test_first_party_events_with_an_api_key(client, make_caller):
    operator, viewer = make_caller(Role.OPERATOR), make_caller(Role.VIEWER)
    body = {"type": "deploy.finished", "id": "dep-1", "data": {"ok": True}, "occurred_at": "2026-12-01T08:00:00Z"}
    first = client.post("/events", json=body, headers=operator.headers)
    assert first.status_code == 202, first.text
    again = client.post("/events", json=body, headers=operator.headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    keyed = client.post("/events", json={"type": "a.b", "data": 1},
                        headers={**operator.headers, "Idempotency-Key": "k-1"})
    assert keyed.status_code == 202 and keyed.json()["event_id"] == "k-1"
    missing = assert_problem(client.post("/events", json={"type": "a.b", "data": 1}, headers=operator.headers),
                             422, "validation-error")
    assert missing["errors"][0]["field"] == "id"
    assert_problem(client.post("/events", json=body, headers=viewer.headers), 403, "forbidden")
    assert_problem(client.post("/events", json=body), 401, "unauthenticated")
    bad_type = assert_problem(client.post("/events", json={**body, "type": "no spaces"}, headers=operator.headers),
                              422, "validation-error")
    assert bad_type["errors"][0]["field"] == "type"

    # The debounce compares content: the same data under another id and time hashes alike.
    twin = client.post("/events", json={**body, "id": "dep-2", "occurred_at": "2026-12-01T08:01:00Z"},
                       headers=operator.headers).json()["id"]
    hashes = {e.payload_hash for e in InboundEvent.objects.filter(pk__in=[first.json()["id"], twin])}
    assert len(hashes) == 1
    InboundEvent.objects.filter(pk=twin).delete()

    listed = client.get("/events", headers=viewer.headers).json()["items"]
    assert [e["event_id"] for e in listed] == ["k-1", "dep-1"]
    detail = client.get(f"/events/{first.json()['id']}", headers=viewer.headers).json()
    assert detail["payload"]["data"] == {"ok": True} and detail["routes"] == [] and detail["outcome"] == "pending"
    outsider = make_caller(Role.ADMIN, workspace="other")
    assert_problem(client.get(f"/events/{first.json()['id']}", headers=outsider.headers), 404, "not-found")


# --- the admin ------------------------------------------------------------------------------


def test_the_admin_shows_secret_names_only_and_sends_a_signed_test_event(client, hooks_url, admin_client,
                                                                          monkeypatch):
    src = source(secrets=[{"env": "HOOK_TEST_NEW", "retire_at": None},
                          {"env": "HOOK_TEST_UNSET", "retire_at": None}])
    monkeypatch.setenv("HOOK_TEST_NEW", SECRETS["HOOK_TEST_NEW"])
    page = admin_client.get(f"/admin/events/webhooksource/{src.pk}/change/").content.decode()
    assert "HOOK_TEST_NEW" in page and "HOOK_TEST_UNSET" in page and "NOT SET" in page
    assert KEY_NEW not in page

    server = hooks_url.removesuffix("/api/v1")
    with override_tickwise(PUBLIC_URL=server):
        answer = admin_client.post("/admin/events/webhooksource/", {
            "action": "send_test_event", "_selected_action": [src.pk]}, follow=True)
    assert "answered 202" in answer.content.decode(), answer.content.decode()[-2000:]
    with override_tickwise(PUBLIC_URL=""):
        direct = admin_client.post("/admin/events/webhooksource/", {
            "action": "send_test_event", "_selected_action": [src.pk]}, follow=True)
    assert "without HTTP" in direct.content.decode()
    events = list(InboundEvent.objects.filter(type="tickwise.test"))
    assert len(events) == 2 and {e.secret_env for e in events} == {"HOOK_TEST_NEW"}

    shown = admin_client.get(f"/admin/events/inboundevent/{events[0].pk}/change/").content.decode()
    assert "tickwise.test" in shown and "sent_by" in shown


# --- through routing ----------------------------------------------------------------------------


def test_a_webhook_posted_20_times_at_once_starts_one_run(client, hooks_url, stack, waiter):
    src = source()
    agent = Agent.objects.create(name="reactor", adapter="echo", workspace_id=src.workspace_id)
    Subscription.objects.create(workspace_id=src.workspace_id, agent=agent, name="deploys",
                                event_type="deploy.finished", match={"data.repo": "web"})
    stack.worker()
    body = body_of()
    headers = {**standard_headers(body, KEY_NEW, msg_id="msg_routed"), "tickwise-depth": "2"}

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{hooks_url}/hooks/stdhook", content=body, headers=headers, timeout=30)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(post, range(20)))
    assert sorted(a.status_code for a in answers) == [200] * 19 + [202]
    event_id = answers[0].json()["id"]
    waiter(lambda: Run.objects.filter(route__event_id=event_id, state=RunState.SUCCEEDED).exists(), timeout=60,
           what="the event's run to succeed")
    run = Run.objects.get(route__event_id=event_id)
    event = InboundEvent.objects.get(pk=event_id)
    assert (run.trigger, run.agent_id, run.event_depth, run.chain_id) == ("event", agent.pk, 3, event.chain_id)
    assert event.outcome == "routed" and Run.objects.count() == 1


def test_staff_see_and_place_sources_only_in_workspaces_they_administer(transactional_db):
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    mine, theirs = (Workspace.objects.create(slug=slug, name=slug) for slug in ("mine", "theirs"))
    source("in-mine", workspace=mine)
    source("in-theirs", workspace=theirs)
    staff = User.objects.create_user("staffer", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="events"))
    Membership.objects.create(workspace=mine, user=staff, role=Role.ADMIN)
    browser = Client(SERVER_NAME="127.0.0.1")
    browser.force_login(staff)
    listed = browser.get("/admin/events/webhooksource/").content.decode()
    assert "in-mine" in listed and "in-theirs" not in listed
    InboundEvent.objects.create(workspace=mine, source=WebhookSource.objects.get(slug="in-mine"), event_id="e",
                                type="a.b", received_at=timezone.now(), payload={}, payload_hash="0" * 64)
    events = browser.get("/admin/events/inboundevent/").content.decode()
    assert "in-mine" in events and "in-theirs" not in events and "theirs" not in events
    form = browser.get("/admin/events/webhooksource/add/").content.decode()
    assert f'value="{mine.pk}"' in form and f'value="{theirs.pk}"' not in form
