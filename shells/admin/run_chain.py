"""A run's causal neighbourhood on its admin page: the schedules it created and its chain as a tree.

The API answers the same question at ``GET /api/v1/runs/{run}/chain``. Both
lists are bounded and each is one query (plus a count only when the bound is
reached), so the run page's query count does not grow with the chain.
Everything stays inside the run's workspace: a chain id is an opaque string,
not a permission.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.contrib import admin
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from runs.models import Run
from schedules.models import FinishedReason, Schedule
from workspaces.models import AuditEntry

from .cadence import schedule_cadence
from .links import run_link
from .run_format import state_badge, utc_time

CREATED_LIMIT = 50
CHAIN_LIMIT = 200
# Past this depth the tree stops indenting (a long run of wakeups would
# otherwise march off the page) and each entry says its level instead.
MAX_INDENT = 12
CHAIN_FIELDS = ("id", "parent_run_id", "trigger", "state", "tick_at", "chain_id")
# Shares of the table's width, so the free text of the last two columns does not
# squeeze the schedule's name into breaking at its hyphens.
CREATED_COLUMNS = SafeString('<colgroup><col style="width:24%"><col style="width:18%"><col style="width:30%">'
                             '<col style="width:28%"></colgroup>')
# The root lines up with the page's other values; each nested list is indented
# with a guide line, so a run's siblings line up even below a long subtree.
TOP_LIST = '<ul class="tw-chain" style="margin:0;padding-left:0">'
NESTED_LIST = ('<ul class="tw-chain" style="margin:0 0 0 .35em;padding-left:.85em;'
               'border-left:1px solid var(--border-color,#ccc)">')


class RunChainFields:
    """The run page's "Schedules created" and "Chain" fields, for ``RunAdmin``."""

    @admin.display(description="schedules created")
    def schedules_created(self, run: Run) -> SafeString:
        return created_table(run, limit=CREATED_LIMIT)

    @admin.display(description="chain (who started whom)")
    def chain_tree(self, run: Run) -> SafeString:
        return chain_html(run)


def same_workspace(run: Run) -> Q:
    """Rows whose agent is in the run's workspace (a Schedule's or a Run's ``agent``)."""
    return Q(agent__workspace_id=run.agent.workspace_id)


# --- schedules created --------------------------------------------------------------

def created_by_run(run: Run) -> QuerySet[Schedule]:
    """The schedules ``run`` made with its ``schedule`` tool, soft-deleted ones too, with why each was cancelled.

    By the origin agent first (its index; the run's agent is the origin agent
    of everything the run made), and within the run's workspace.
    """
    cancelled = (AuditEntry.objects.filter(object_type="schedule", object_id=OuterRef("pk"), action="delete")
                 .order_by("-at", "-id"))
    return (Schedule.objects.filter(same_workspace(run), origin_agent_id=run.agent_id, origin_run_id=run.pk)
            .annotate(cancel_reason=Subquery(cancelled.values("detail")[:1]),
                      cancelled_via=Subquery(cancelled.values("source")[:1])).order_by("id"))


def created_table(run: Run, *, limit: int) -> SafeString:
    found = created_by_run(run)
    shown = list(found[:limit + 1])
    if not shown:
        return SafeString("none")
    more = found.count() - limit if len(shown) > limit else 0
    rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
        (schedule_cell(schedule), schedule_cadence(schedule), schedule_status(schedule), schedule.reason or "-")
        for schedule in shown[:limit]))
    note = format_html("<p>+{} more (the first {} are shown)</p>", more, limit) if more else ""
    return format_html('<table class="tw-created">{}<tr><th>schedule</th><th>cadence</th><th>status</th>'
                       '<th>reason given</th></tr>{}</table>{}', CREATED_COLUMNS, rows, note)


def schedule_cell(schedule: Schedule) -> SafeString:
    """A live schedule links to its page; a deleted one has none (the schedule admin lists only live ones).

    Both link to their runs, which the run list finds by id after a delete.
    """
    runs = f"{reverse('admin:runs_run_changelist')}?schedule__id__exact={schedule.pk}"
    if schedule.deleted_at is not None:
        return format_html('{} <small>(deleted, <a href="{}">its runs</a>)</small>', schedule.name, runs)
    page = reverse("admin:schedules_schedule_change", args=[schedule.pk])
    return format_html('<a href="{}">{}</a> <small>(<a href="{}">its runs</a>)</small>', page, schedule.name, runs)


def schedule_status(schedule: Schedule) -> str:
    if schedule.deleted_at is not None:
        # The agent's own cancel is recorded as "cancelled by run N of agent A (session S)".
        reason = (getattr(schedule, "cancel_reason", "") or "").removeprefix("cancelled ")
        via = getattr(schedule, "cancelled_via", "") or "unknown"
        return format_html("cancelled: {} ({})", reason or f"via {via}, no reason recorded",
                           unbroken_time(schedule.deleted_at))
    if schedule.finished_reason:
        return f"finished: {FinishedReason(schedule.finished_reason).label}"
    if schedule.paused:
        return f"paused: {schedule.paused_reason or 'no reason given'}"
    return format_html("active until {}", unbroken_time(schedule.end_at)) if schedule.end_at else "active"


def unbroken_time(moment: datetime) -> SafeString:
    """An instant on one line: a narrow column would otherwise break its date at a hyphen."""
    return format_html('<span style="white-space:nowrap">{}</span>', utc_time(moment))


# --- the chain ------------------------------------------------------------------------

def chain_members(run: Run, *, limit: int) -> tuple[list[Run], int]:
    """The chain's first ``limit`` runs by id (the root first), always with ``run``; and how many were left out."""
    if not run.chain_id:
        return [run], 0
    found = (Run.objects.filter(same_workspace(run), chain_id=run.chain_id)
             .only(*CHAIN_FIELDS).order_by("id"))
    members = list(found[:limit + 1])
    left_out = found.count() - limit if len(members) > limit else 0
    members = members[:limit]
    if all(member.pk != run.pk for member in members):
        members.append(run)  # past the bound: shown at the top level, its parent not among those shown
    return members, left_out


def chain_order(members: Iterable[Run]) -> list[tuple[int, Run]]:
    """Depth-first, children in the order they were created: (depth, run) for each run, parents before children.

    A run whose parent is not among ``members`` starts a tree of its own at the top level.
    """
    runs = {member.pk: member for member in members}
    children: dict[int | None, list[Run]] = defaultdict(list)
    for member in sorted(runs.values(), key=lambda member: member.pk):
        children[member.parent_run_id if member.parent_run_id in runs else None].append(member)
    order: list[tuple[int, Run]] = []
    stack = [(0, root) for root in reversed(children[None])]
    while stack:  # a stack, not recursion: a chain of wakeups can be as deep as it is long
        depth, member = stack.pop()
        order.append((depth, member))
        stack.extend((depth + 1, child) for child in reversed(children[member.pk]))
    return order


def chain_html(run: Run) -> SafeString:
    members, left_out = chain_members(run, limit=CHAIN_LIMIT)
    note = format_html("<p>+{} more runs in this chain (the first {} by id are shown)</p>", left_out,
                       CHAIN_LIMIT) if left_out else ""
    return format_html("{}{}", nested_list(chain_order(members), current=run.pk), note)


def nested_list(order: list[tuple[int, Run]], *, current: int) -> SafeString:
    """Nested ``<ul>``s from a depth-first order, whose depth grows by at most one from one entry to the next."""
    parts: list[str] = []
    previous = -1
    for depth, member in order:
        level = min(depth, MAX_INDENT)
        if level > previous:
            parts.append(NESTED_LIST if previous >= 0 else TOP_LIST)
        else:
            parts.append("</li>" + "</ul></li>" * (previous - level))
        parts.append(format_html('<li data-run="{}">{}', member.pk, chain_entry(member, depth, current=current)))
        previous = level
    parts.append("</li>" + "</ul></li>" * previous + "</ul>")
    return SafeString("".join(parts))


def chain_entry(member: Run, depth: int, *, current: int) -> SafeString:
    name = (format_html('<strong class="tw-chain-current">run {}</strong> (this run)', member.pk)
            if member.pk == current else run_link(member.pk, f"run {member.pk}"))
    level = format_html(" <small>level {}</small>", depth) if depth > MAX_INDENT else ""
    return format_html("{} {} {} <small>{}</small>{}", name, member.get_trigger_display(),
                       state_badge(member.state, short=True), utc_time(member.tick_at), level)
