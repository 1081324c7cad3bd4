"""The event ledger from the command line: list recent events, replay one through routing."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from events.models import InboundEvent, RoutingOutcome
from triggers.routing import Routed, event_replay
from workspaces.audit import Actor

from ._arguments import shown, whole_number

MAX_ID = 2**63 - 1  # a bigint primary key


class Command(BaseCommand):
    help = ("events list [--outcome OUTCOME] [--limit N] | events replay EVENT_ID (re-route a stored event: "
            "new runs only where a subscription has not routed it yet)")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "replay"])
        parser.add_argument("event_id", nargs="?", help="the event to replay (its ledger id, from events list)")
        parser.add_argument("--outcome", choices=RoutingOutcome.values, help="list only events with this outcome")
        parser.add_argument("--limit", default="50", help="how many events to list, newest first (default 50)")

    def handle(self, *args: Any, action: str, event_id: object, outcome: str | None, limit: object,
               **options: Any) -> None:
        if action == "list":
            if event_id is not None:
                raise CommandError("list takes no EVENT_ID")
            return self._list(outcome, whole_number("--limit", limit, low=1, high=10_000))
        if event_id is None:
            raise CommandError("replay needs EVENT_ID (see events list)")
        number = whole_number("EVENT_ID", event_id, low=1, high=MAX_ID)
        routed = event_replay(number, now=timezone.now(), actor=Actor(source="command"))
        if routed is None:
            raise CommandError(f"no event {number} (it may have been purged after the retention window)")
        self._report(routed)

    def _report(self, routed: Routed) -> None:
        for run in routed.runs:
            reason = f": {run.skip_reason}" if run.skip_reason else ""
            self.stdout.write(f"new run {run.pk} ({run.state}{reason}) for subscription "
                              f"{run.route.subscription.name}")
        if routed.already:
            self.stdout.write(f"already routed (no new run): {len(routed.already)} subscription(s)")
        for error in routed.errors:
            self.stdout.write(f"error: {shown(error, limit=300)}")
        self.stdout.write(f"event {routed.event_id}: {routed.outcome}, {len(routed.runs)} new run(s)")

    def _list(self, outcome: str | None, limit: int) -> None:
        events = InboundEvent.objects.select_related("source").order_by("-received_at", "-id")
        if outcome:
            events = events.filter(outcome=outcome)
        for event in events[:limit]:
            source = event.source.slug if event.source else "(first-party)"
            self.stdout.write(f"{event.pk}\t{event.received_at:%Y-%m-%dT%H:%M:%SZ}\t{source}\t{shown(event.type)}\t"
                              f"{shown(event.event_id, limit=60)}\t{event.outcome}\tdepth {event.depth}")
