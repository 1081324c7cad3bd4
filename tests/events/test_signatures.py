"""The verifiers, one kind at a time, with the clock and the environment passed in.

Signatures are computed here from the specs by hand (hmac, hashlib, base64).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from events.models import SourceKind, WebhookSource
from events.signatures import (
    DeliveryMalformed,
    SignatureRefused,
    TimestampRefused,
    delivery_verify,
    secrets_active,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KEY = b"0123456789abcdef0123456789abcdef"
ENV = {"NEW": "whsec_" + base64.b64encode(KEY).decode(), "OLD": "whsec_" + base64.b64encode(b"o" * 32).decode(),
       "GH": "hunter2", "BROKEN": "whsec_***not base64***"}
BODY = b'{"type":"deploy.finished","data":{}}'


def standard(**fields) -> WebhookSource:
    values = {"secrets": [{"env": "NEW", "retire_at": None}], **fields}
    return WebhookSource(workspace_id=1, slug="s", kind=SourceKind.STANDARD, **values)


def signed(key: bytes, msg_id: str = "msg_1", at: datetime = NOW, body: bytes = BODY) -> dict[str, str]:
    stamp = str(int(at.timestamp()))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"Webhook-Id": msg_id, "Webhook-Timestamp": stamp,
            "Webhook-Signature": "v1," + base64.b64encode(mac).decode()}


def verify(source: WebhookSource, headers: dict[str, str], body: bytes = BODY, now: datetime = NOW):
    return delivery_verify(source, body=body, headers=headers, now=now, environ=ENV)


def test_standard_names_the_matching_secret_and_reads_id_and_time():
    verified = verify(standard(), signed(KEY))
    assert (verified.secret_env, verified.delivery_id, verified.signed_at) == ("NEW", "msg_1", NOW)


def test_standard_accepts_any_v1_signature_among_several_and_skips_other_versions_and_junk():
    good = signed(KEY)["Webhook-Signature"]
    junk = f"v1a,abc v1,!!! v2,{good[3:]} v1,{base64.b64encode(b'x').decode()}"
    headers = {**signed(KEY), "Webhook-Signature": f"{junk} {good}"}
    assert verify(standard(), headers).secret_env == "NEW"


@pytest.mark.parametrize("offset, refused", [(300, False), (-300, False), (301, True), (-301, True)])
def test_standard_tolerance_both_ways(offset, refused):
    headers = signed(KEY, at=NOW + timedelta(seconds=offset))
    if refused:
        with pytest.raises(TimestampRefused):
            verify(standard(), headers)
    else:
        assert verify(standard(), headers).secret_env == "NEW"


def test_a_forged_stale_delivery_is_a_signature_problem_not_a_clock_hint():
    with pytest.raises(SignatureRefused):
        verify(standard(), signed(b"f" * 32, at=NOW - timedelta(hours=1)))


def test_standard_refuses_missing_headers_and_unreadable_timestamps():
    with pytest.raises(SignatureRefused):
        verify(standard(), {"Webhook-Id": "x"})
    with pytest.raises(TimestampRefused):
        verify(standard(), {**signed(KEY), "Webhook-Timestamp": "1.5e9"})


def test_rotation_old_and_new_until_retirement_and_a_broken_secret_is_skipped():
    rotating = standard()
    rotating.secrets = [{"env": "BROKEN", "retire_at": None}, {"env": "MISSING", "retire_at": None},
                        {"env": "OLD", "retire_at": (NOW + timedelta(hours=1)).isoformat()},
                        {"env": "NEW", "retire_at": None}]
    assert verify(rotating, signed(b"o" * 32)).secret_env == "OLD"
    assert verify(rotating, signed(KEY)).secret_env == "NEW"
    with pytest.raises(SignatureRefused):
        verify(rotating, signed(b"o" * 32, at=NOW + timedelta(hours=2)), now=NOW + timedelta(hours=2))
    assert [s.env for s in secrets_active(rotating, now=NOW, environ=ENV)] == ["BROKEN", "OLD", "NEW"]


def test_no_active_secret_refuses_everything():
    with pytest.raises(SignatureRefused):
        verify(standard(secrets=[]), signed(KEY))


def test_github_hex_signature_delivery_and_event():
    source = WebhookSource(workspace_id=1, slug="gh", kind=SourceKind.GITHUB, secrets=[{"env": "GH"}])
    digest = hmac.new(b"hunter2", BODY, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": "d-1", "X-GitHub-Event": "issues"}
    verified = verify(source, headers)
    assert (verified.secret_env, verified.delivery_id, verified.event_type) == ("GH", "d-1", "github.issues")
    with pytest.raises(SignatureRefused):
        verify(source, {**headers, "X-Hub-Signature-256": digest})  # the prefix is part of GitHub's format
    with pytest.raises(SignatureRefused):
        verify(source, headers, body=BODY + b"\n")
    with pytest.raises(DeliveryMalformed):
        verify(source, {k: v for k, v in headers.items() if k != "X-GitHub-Event"})


def test_hmac_with_or_without_prefix_and_the_body_hash_as_id():
    source = WebhookSource(workspace_id=1, slug="h", kind=SourceKind.HMAC, secrets=[{"env": "GH"}],
                           signature_header="X-Sig")
    digest = hmac.new(b"hunter2", BODY, hashlib.sha256).hexdigest()
    assert verify(source, {"x-sig": digest}).delivery_id == hashlib.sha256(BODY).hexdigest()
    assert verify(source, {"X-Sig": f"sha256={digest.upper()}"}).secret_env == "GH"
    source.id_header = "X-Id"
    with pytest.raises(DeliveryMalformed):
        verify(source, {"X-Sig": digest})
    assert verify(source, {"X-Sig": digest, "X-Id": "abc"}).delivery_id == "abc"
