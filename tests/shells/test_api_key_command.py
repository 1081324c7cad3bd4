"""``manage.py api_key`` and ``workspace``: a key is shown once, stored as a hash, listed and revoked, audited."""
from __future__ import annotations

import hashlib
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from workspaces.keys import KeyRefused, api_key_verify
from workspaces.models import ApiKey, AuditEntry

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_key_is_shown_once_kept_as_a_hash_and_revoked():
    get_user_model().objects.create_user("ops")
    run("workspace", "create", "acme")
    run("workspace", "member", "acme", "ops", "--role", "operator")
    token = run("api_key", "create", "--workspace", "acme", "--user", "ops", "--name", "deploy bot").strip()
    assert token.startswith("tw_")
    key = ApiKey.objects.get()
    assert key.key_hash == hashlib.sha256(token.encode()).hexdigest() and token not in str(vars(key))
    assert api_key_verify(token, now=timezone.now()) == key
    assert f"tw_{key.prefix}_…" in run("api_key", "list", "--workspace", "acme")
    run("api_key", "revoke", f"tw_{key.prefix}_")
    with pytest.raises(KeyRefused):
        api_key_verify(token, now=timezone.now())
    assert list(AuditEntry.objects.filter(object_type="apikey").values_list("action", "source")) == [
        ("revoke", "command"), ("create", "command")]


def test_a_key_needs_a_member_and_bad_arguments_are_one_line():
    get_user_model().objects.create_user("stranger")
    run("workspace", "create", "acme")
    with pytest.raises(CommandError, match="not a member"):
        run("api_key", "create", "--workspace", "acme", "--user", "stranger", "--name", "x")
    with pytest.raises(CommandError, match="--expires"):
        run("api_key", "create", "--workspace", "acme", "--user", "stranger", "--name", "x", "--expires", "soon")
    with pytest.raises(CommandError, match="no key"):
        run("api_key", "revoke", "tw_ffffffffffff_")
