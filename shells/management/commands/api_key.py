"""API keys: ``api_key create|list|revoke``. A new key is printed once and never stored."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from workspaces.audit import Actor
from workspaces.keys import KeyRefused, api_key_create, api_key_revoke
from workspaces.models import ApiKey, Workspace

from ._arguments import instant, one_line, shown

COMMAND = Actor(source="command")


class Command(BaseCommand):
    help = ("api_key create --workspace SLUG --user NAME --name LABEL [--expires ISO] | "
            "list [--workspace SLUG] | revoke PREFIX")

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="issue a key for a member of a workspace")
        create.add_argument("--workspace", required=True)
        create.add_argument("--user", required=True)
        create.add_argument("--name", required=True, help="what the key is for")
        create.add_argument("--expires", help="an ISO-8601 instant with its offset")
        listing = actions.add_parser("list", help="keys, newest first (prefixes only)")
        listing.add_argument("--workspace")
        revoke = actions.add_parser("revoke", help="revoke a key by its prefix")
        revoke.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        expires = instant("--expires", options["expires"]) if options["expires"] else None
        workspace = Workspace.objects.filter(slug=_slug("--workspace", options["workspace"])).first()
        user = get_user_model().objects.filter(username=_slug("--user", options["user"])).first()
        if workspace is None or user is None:
            raise one_line(f"no workspace {shown(options['workspace'])!r} or no user {shown(options['user'])!r}")
        name = options["name"]
        if not name.isprintable() or not 0 < len(name) <= 100:
            raise one_line("--name: 1 to 100 printable characters")
        try:
            issued = api_key_create(workspace=workspace, user=user, name=name, expires_at=expires,
                                    now=timezone.now(), actor=COMMAND)
        except KeyRefused as refused:
            raise one_line(str(refused)) from None
        self.stdout.write(issued.token)
        self.stderr.write("Shown once: store it now. Send it as 'Authorization: Bearer <key>'.")

    def _list(self, options: dict[str, Any]) -> None:
        keys = ApiKey.objects.select_related("workspace", "user")
        if options["workspace"]:
            keys = keys.filter(workspace__slug=_slug("--workspace", options["workspace"]))
        for key in keys:
            state = "revoked" if key.revoked_at else "expired" if key.expires_at and key.expires_at <= timezone.now() \
                else "active"
            self.stdout.write(f"tw_{key.prefix}_…\t{key.workspace.slug}\t{key.user.get_username()}\t{key.name}\t"
                              f"{state}\tlast used {key.last_used_at or 'never'}")

    def _revoke(self, options: dict[str, Any]) -> None:
        prefix = options["prefix"].removeprefix("tw_").split("_")[0]
        key = ApiKey.objects.filter(prefix=_slug("PREFIX", prefix)).first()
        if key is None:
            raise one_line(f"no key with prefix {shown(prefix)!r}")
        if not api_key_revoke(key, now=timezone.now(), actor=COMMAND):
            raise one_line(f"key tw_{key.prefix}_… was already revoked")
        self.stdout.write(f"revoked tw_{key.prefix}_…")


def _slug(option: str, value: str) -> str:
    if not value.isascii() or not value.replace("-", "").replace("_", "").replace(".", "").replace("@", "").isalnum():
        raise one_line(f"{option}: not a name: {shown(value)!r}")
    return value
