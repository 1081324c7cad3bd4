"""``/sources`` through the live API: roles, versions, secrets as names only, and a source in use."""
from __future__ import annotations

from events.models import InboundEvent, WebhookSource
from tests.shells.api.conftest import assert_problem, field_names
from workspaces.models import AuditEntry, Role

BODY = {"slug": "acme-ci", "kind": "github", "secrets": [{"env": "ACME_CI_SECRET", "retire_at": None}]}


def test_admins_write_viewers_read_with_versions(api_as, make_caller):
    admin, viewer = api_as(make_caller(Role.ADMIN)), api_as(make_caller(Role.VIEWER))
    created = admin.post("/sources", json=BODY)
    assert created.status_code == 201, created.text
    source = created.json()
    assert source["url"] == "/api/v1/hooks/acme-ci" and source["version"] == 1
    assert source["secrets"] == [{"env": "ACME_CI_SECRET", "retire_at": None, "set": False, "active": False}]
    assert_problem(viewer.post("/sources", json={**BODY, "slug": "other"}), 403, "forbidden")
    assert [s["slug"] for s in viewer.get("/sources").json()["items"]] == ["acme-ci"]

    etag = viewer.etag("/sources/acme-ci")
    assert_problem(admin.patch("/sources/acme-ci", json={"enabled": False}), 428, "precondition-required")
    changed = admin.patch("/sources/acme-ci", json={"enabled": False, "rate_per_minute": 60},
                          headers={"If-Match": etag})
    assert changed.status_code == 200 and changed.json()["version"] == 2 and changed.json()["enabled"] is False
    assert_problem(admin.patch("/sources/acme-ci", json={"enabled": True}, headers={"If-Match": etag}),
                   412, "version-mismatch")
    assert AuditEntry.objects.filter(object_type="webhooksource", action="update").count() == 1


def test_a_secret_value_in_place_of_a_name_is_refused_naming_the_field(api_as, make_caller):
    admin = api_as(make_caller(Role.ADMIN))
    refused = admin.post("/sources", json={**BODY, "secrets": [{"env": "whsec_c2VjcmV0"}]})
    assert "secrets.0.env" in field_names(assert_problem(refused, 422, "validation-error"))
    unknown = admin.post("/sources", json={**BODY, "kind": "gitlab"})
    assert "kind" in field_names(assert_problem(unknown, 422, "validation-error"))
    nulls = admin.post("/sources", json={**BODY, "body_limit_bytes": None, "type_field": None})
    assert {"body_limit_bytes", "type_field"} <= field_names(assert_problem(nulls, 422, "validation-error"))
    assert not WebhookSource.objects.exists()


def test_other_workspaces_see_nothing_and_a_source_with_events_is_disabled_not_deleted(api_as, make_caller):
    admin, outsider = api_as(make_caller(Role.ADMIN)), api_as(make_caller(Role.ADMIN, workspace="other"))
    source = admin.post("/sources", json=BODY).json()
    assert_problem(outsider.get(f"/sources/{source['id']}"), 404, "not-found")
    InboundEvent.objects.create(workspace_id=admin.caller.workspace.pk, source_id=source["id"], event_id="e",
                                type="github.push", received_at="2026-12-01T08:00:00Z", payload={},
                                payload_hash="0" * 64)
    in_use = admin.delete("/sources/acme-ci", headers={"If-Match": '"1"'})
    assert_problem(in_use, 409, "conflict")
    InboundEvent.objects.all().delete()
    assert admin.delete("/sources/acme-ci", headers={"If-Match": '"1"'}).status_code == 204
    assert not WebhookSource.objects.exists()
