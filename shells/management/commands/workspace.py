"""Workspaces and their members: ``workspace create SLUG`` and ``workspace member SLUG USER --role ROLE``."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from workspaces.models import Membership, Role, Workspace

from ._arguments import one_line, shown


class Command(BaseCommand):
    help = "workspace create SLUG [--name NAME] | workspace member SLUG USER --role viewer|operator|admin"

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create")
        create.add_argument("slug")
        create.add_argument("--name", default="")
        member = actions.add_parser("member", help="add a member or change their role")
        member.add_argument("slug")
        member.add_argument("user")
        member.add_argument("--role", choices=Role.values, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        if not (slug.isascii() and slug.replace("-", "").replace("_", "").isalnum() and len(slug) <= 50):
            raise one_line(f"SLUG: letters, digits, - and _ only (at most 50), got {shown(slug)!r}")
        if options["action"] == "create":
            name = options["name"] or slug
            if not (name.isprintable() and len(name) <= 200):  # a lone surrogate or a NUL never reaches the database
                raise one_line(f"--name: printable text of at most 200 characters, got {shown(name)!r}")
            made, created = Workspace.objects.get_or_create(slug=slug, defaults={"name": name})
            self.stdout.write(f"{'created' if created else 'exists'}: workspace {made.slug}")
            return
        workspace = Workspace.objects.filter(slug=slug).first()
        user = get_user_model().objects.filter(username=options["user"]).first() if options["user"].isprintable() \
            else None
        if workspace is None or user is None:
            raise one_line(f"no workspace {shown(slug)!r} or no user {shown(options['user'])!r}")
        Membership.objects.update_or_create(workspace=workspace, user=user, defaults={"role": options["role"]})
        self.stdout.write(f"{user.get_username()} is {options['role']} in {workspace.slug}")
