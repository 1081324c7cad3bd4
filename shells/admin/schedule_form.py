"""The schedule form: wall-clock times in the schedule's own zone, and the version it was loaded at.

The site runs in UTC, and Django's datetime fields read what a person types
in the site's zone: "2026-12-02 09:00" on a New York schedule fired at 04:00
New York time. Here ``run_at``, ``start_at`` and ``end_at`` are typed and
shown as wall-clock times in the zone chosen on the same form, read through
the schedule's ``dst_gap``/``dst_fold`` like its cron ticks
(``core.timing.wallclock``), and labelled with the zone.

``loaded_version`` travels with the form: a save made on a version someone
else has since replaced is refused, so the first person's edit is never lost.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.forms.fields import BaseTemporalField
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core import inputs, timing
from core.timing.wallclock import resolve_wall_clock
from schedules import services
from schedules.models import Schedule
from workspaces.audit import Actor

WALL_CLOCK_FIELDS = ("run_at", "start_at", "end_at")
LABELS = {"run_at": "Run at", "start_at": "Start at", "end_at": "End at"}
READ_WITH = ("timezone", "dst_gap", "dst_fold")  # what a wall-clock time is read through
SHOWN = "%Y-%m-%d %H:%M:%S"
FORM_ACTOR = Actor(source="admin")  # the form's checks are a person's (the save names who)

# Help on every field a person sets, policies first: what it does, and its default.
HELP = {
    "kind": "Cron (calendar times in the schedule's zone), Interval (every N seconds) or One-shot (once).",
    "cron": "Five fields (minute hour day-of-month month day-of-week) or a macro (@daily), matched on the "
            "wall clock of the Timezone below. The list and this page say it in words.",
    "interval_seconds": "Seconds between ticks, 1 to 366 days.",
    "interval_mode": "Fixed rate from the anchor (Start at, else when the schedule was created), or the next "
                     "tick an interval after the previous run ends.",
    "timezone": "IANA zone the cron and the times on this form are read in (type to search: 'New_York').",
    "dst_gap": "A time the clocks skip in spring: skip it (recorded as skipped: dst_gap) or run at the first "
               "valid instant after the gap.",
    "dst_fold": "A time the clocks repeat in autumn: run at the first, the last, or both occurrences "
                "(an expression firing every hour always runs both).",
    "max_runs": "Stop after this many runs (empty: no limit).",
    "jitter_seconds": "Up to this many seconds added to each tick, the same on every node; below the gap "
                      "between ticks.",
    "missed_policy": "Ticks older than the grace period when the beat reaches them (after downtime): skip "
                     "them (recorded), coalesce into one run, or replay each in order.",
    "missed_grace_seconds": "How late a tick may still run as scheduled before it counts as missed.",
    "replay_cap": "With replay: the most missed ticks run after one outage; the rest are recorded skipped.",
    "overlap_policy": "A tick that arrives while a run of the same scope is active: skip it (recorded), "
                      "buffer one or all, allow up to Max concurrent, or cancel the previous run.",
    "max_concurrent": "With allow: how many runs of the scope may be active at once.",
    "concurrency_scope": "What 'a run is active' counts over: this schedule, its agent, or its session.",
    "failure_limit": "Auto-pause after this many consecutive failures, with an alert (0 = never).",
    "timeout_seconds": "A run that has not answered after this many seconds fails with category timeout.",
    "max_attempts": "Attempts per run, the first included, for errors the adapter marks as transient; "
                    "then the run is dead (dead-letter queue, replayable).",
    "retry_backoff_seconds": "Wait before the first retry; doubled each attempt, with jitter.",
    "retry_backoff_max_seconds": "The longest wait between two attempts.",
    "session_mode": "A new agent session per run, or one persistent session reused by every run.",
    "completion_url": "Post each run's outcome here, signed (Standard Webhooks); the agent's URL otherwise.",
    "name": "A slug, unique among this agent's live schedules.",
}


def template_help() -> SafeString:
    names = format_html_join(", ", "<code>{{{{{}}}}}</code>", ((name,) for name in sorted(inputs.VARIABLES)))
    return format_html("The input sent to the agent at each tick. Variables: {}. Calendar values (date, "
                       "day_of_week) are the tick's day in the schedule's zone; plain substitution, an "
                       "unknown name is refused on save.", names)


class ZoneInput(forms.TextInput):
    """A text box that searches the allowed zones as you type (an HTML datalist over the validators' list)."""

    LIST_ID = "tw-timezones"

    def __init__(self) -> None:
        super().__init__(attrs={"list": self.LIST_ID, "size": 32, "autocomplete": "off"})

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        options = format_html_join("", '<option value="{}">', ((zone,) for zone in sorted(timing.ALLOWED_TIMEZONES)))
        box = super().render(name, value, attrs, renderer)
        return format_html('{}<datalist id="{}">{}</datalist>', box, self.LIST_ID, options)


class WallClockField(forms.DateTimeField):
    """A date and time as typed, with no zone attached: Django's reading in the site's zone is skipped.

    A value typed with an explicit offset ("…+01:00") is that instant as is.
    """

    widget = forms.DateTimeInput(format=SHOWN, attrs={"placeholder": "YYYY-MM-DD HH:MM", "size": 22})

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value
        try:
            parsed = parse_datetime(str(value).strip())
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        # Not ISO 8601: the locale's input formats, still naive.
        return parsed or BaseTemporalField.to_python(self, value)


class ScheduleForm(forms.ModelForm):
    run_at = WallClockField(required=False)
    start_at = WallClockField(required=False)
    end_at = WallClockField(required=False)
    loaded_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Schedule
        # Every editable field, as the admin showed before this form: a field added to the model appears.
        fields = "__all__"  # noqa: DJ007

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zone = self._stored_zone()
        for name in WALL_CLOCK_FIELDS:
            stored = getattr(self.instance, name)
            if stored is not None and zone is not None:
                # Shown to the second: an untouched field reads back as the exact stored instant (see clean).
                self.initial[name] = stored.astimezone(zone).replace(tzinfo=None, microsecond=0)
            self.fields[name].label = f"{LABELS[name]} ({zone.key if zone else 'schedule timezone'})"
            self.fields[name].help_text = _help(name, stored, zone)
        if self.instance.pk is not None:
            self.initial["loaded_version"] = self.instance.version
        self._explain()

    def _explain(self) -> None:
        for name, text in HELP.items():
            if name in self.fields:
                self.fields[name].help_text = text
        if "input_template" in self.fields:
            self.fields["input_template"].help_text = template_help()
        if "timezone" in self.fields:
            self.fields["timezone"].widget = ZoneInput()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        self._check_version(data)
        self._check_name(data)
        self._read_wall_clocks(data)
        return data

    def full_clean(self) -> None:
        super().full_clean()  # the fields, clean(), then the instance and the model's checks
        if self.is_bound and not self.errors:
            self._validate_with_clock()

    def _validate_with_clock(self) -> None:
        """The service's checks that need the clock (a one-shot in the past), as form errors, not a 500."""
        try:
            services.schedule_validate(self.instance, now=timezone.now(), actor=FORM_ACTOR)
        except ValidationError as error:
            for field, messages in _by_field(error).items():
                self.add_error(field if field in self.fields else None, messages)

    def _check_name(self, data: dict[str, Any]) -> None:
        # The database's unique constraint reads deleted_at, which is not on the
        # form, so Django's own check leaves it out; say it here, on the field.
        agent, name = data.get("agent"), data.get("name")
        if agent is None or not name:
            return
        if Schedule.objects.live().filter(agent=agent, name=name).exclude(pk=self.instance.pk).exists():
            self.add_error("name", f"{agent}/{name} already exists: a live schedule of this agent has "
                                   f"this name (a deleted schedule's name is free).")

    def _stored_zone(self) -> ZoneInfo | None:
        if self.instance.pk is None:
            return None
        try:
            return timing.validate_timezone(self.instance.timezone)
        except timing.TimingError:
            return None

    def _check_version(self, data: dict[str, Any]) -> None:
        """Refuse a form loaded at a version that has since been replaced.

        In the admin's request transaction (which also runs the save) the row
        stays locked from here to the save, so no edit can land in between;
        ``schedule_save(expected_version=…)`` checks again under its own lock.
        """
        if self.instance.pk is None:
            return
        rows = Schedule.objects.filter(pk=self.instance.pk)
        if transaction.get_connection().in_atomic_block:
            rows = rows.select_for_update()
        current = rows.values_list("version", flat=True).first()
        loaded = data.get("loaded_version")
        if current is not None and loaded != current:
            raise forms.ValidationError(stale_message(loaded, current), code="stale")

    def _read_wall_clocks(self, data: dict[str, Any]) -> None:
        zone, gap, fold = _zone_name(data.get("timezone")), data.get("dst_gap"), data.get("dst_fold")
        for name in WALL_CLOCK_FIELDS:
            value = data.get(name)
            if value is None or value.tzinfo is not None:
                continue
            if zone is None or gap is None or fold is None:
                del data[name]  # the form is invalid anyway: the instance keeps its stored value
            elif self._untouched(name, value, data):
                data[name] = getattr(self.instance, name)
            else:
                self._read(name, value, zone, gap, fold, data)

    def _untouched(self, name: str, value: datetime, data: dict[str, Any]) -> bool:
        # The same wall time read the same way keeps the stored instant, to the
        # microsecond, and the second pass of a fold it may have been set to.
        return (self.instance.pk is not None and self.initial.get(name) == value
                and all(data.get(key) == getattr(self.instance, key) for key in READ_WITH))

    def _read(self, name: str, value: datetime, zone: str, gap: str, fold: str, data: dict[str, Any]) -> None:
        try:
            data[name] = resolve_wall_clock(value, zone, gap=gap, fold=fold, name=name)
        except timing.TimingError as error:
            self.add_error(name, str(error))


def _zone_name(value: object) -> str | None:
    """The zone a time can be read in; None for a bad one (the model names what is wrong with it)."""
    try:
        return timing.validate_timezone(value).key  # type: ignore[arg-type]  # validate_timezone checks the type
    except timing.TimingError:
        return None


def _by_field(error: ValidationError) -> dict[str, list[str]]:
    return error.message_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.messages}


def stale_message(loaded: int | None, current: int) -> str:
    return (f"Someone else saved this schedule after you opened it (it is now at version {current}, "
            f"this page was loaded at version {loaded}). Nothing was saved: reload the page to see "
            f"their changes, then make yours again.")


def _help(name: str, stored: datetime | None, zone: ZoneInfo | None) -> str:
    where = f"in {zone.key}, the schedule's timezone" if zone else "in the schedule's timezone (the Timezone field)"
    text = (f"Wall-clock time {where}: YYYY-MM-DD HH:MM[:SS]. A time the clocks skip or repeat "
            f"follows Dst gap / Dst fold.")
    if stored is not None and zone is not None:
        local = stored.astimezone(zone)
        text += f" Stored: {local:{SHOWN} %Z} = {stored.astimezone(UTC):{SHOWN}} UTC."
    return text

