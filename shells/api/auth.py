"""Who is calling: an API key (``Authorization: Bearer tw_…``) and the role it carries now.

A key belongs to one user in one workspace; its role is that user's current
membership role, read on every request, so removing a member or lowering
their role takes effect at once, for their keys too.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from workspaces.audit import Actor
from workspaces.keys import KeyRefused, api_key_verify
from workspaces.models import ApiKey, Role
from workspaces.roles import member_role, role_at_least

from .problems import Problem


@dataclass(frozen=True)
class Principal:
    key: ApiKey
    role: str

    @property
    def workspace_id(self) -> int:
        return self.key.workspace_id

    @property
    def user_id(self) -> int:
        return self.key.user_id

    @property
    def actor(self) -> Actor:
        return Actor(source="api", user_id=self.key.user_id, api_key_id=self.key.id)

    def require(self, role: str) -> None:
        if not role_at_least(self.role, role):
            raise Problem(403, "forbidden", f"this needs the {role} role; the key's user is {self.role}")


class ApiKeyAuth(HttpBearer):
    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        try:
            key = api_key_verify(token, now=timezone.now())
        except KeyRefused as refused:
            raise Problem(401, "unauthenticated", str(refused),
                          headers={"WWW-Authenticate": 'Bearer realm="tickwise"'}) from None
        role = member_role(key.user_id, key.workspace_id)
        if role is None:
            raise Problem(401, "unauthenticated", "the key's user is no longer a member of its workspace",
                          headers={"WWW-Authenticate": 'Bearer realm="tickwise"'})
        return Principal(key=key, role=role)


def principal(request: HttpRequest) -> Principal:
    found = getattr(request, "auth", None)
    assert isinstance(found, Principal)
    return found


VIEWER, OPERATOR, ADMIN = Role.VIEWER, Role.OPERATOR, Role.ADMIN
