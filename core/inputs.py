"""Input templates: plain ``{{variable}}`` substitution, no code execution.

The variable set is closed; an unknown name is a validation error when the
schedule is saved, never a surprise at fire time.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping

VARIABLES = frozenset({
    "date", "day_of_week", "timestamp", "run_number", "tick_at",
    "period_start", "period_end", "schedule",
})
# An event's input template: the schedule variables that make sense for a
# reaction, and ``event.<field>`` over the event (``event.data.<path>`` into its payload).
EVENT_VARIABLES = frozenset({"date", "day_of_week", "timestamp", "tick_at", "subscription"})
EVENT_FIELDS = frozenset({"type", "id", "subject", "source", "occurred_at", "received_at", "chain_id", "depth",
                          "data", "payload"})
# The fields with inner paths: the event's data, and the whole body as delivered.
EVENT_OBJECTS = frozenset({"data", "payload"})
EVENT_PREFIX = "event."
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class TemplateError(ValueError):
    pass


def template_variables(template: str, *, event: bool = False) -> list[str]:
    """The names used by ``template``; raises TemplateError on any malformed part.

    ``event``: an event subscription's template (``EVENT_VARIABLES`` and ``event.…``).
    """
    names = [match.group(1) for match in _PLACEHOLDER.finditer(template)]
    leftover = _PLACEHOLDER.sub("", template)
    if "{{" in leftover or "}}" in leftover:
        raise TemplateError("unbalanced '{{' or '}}' in the input template")
    known = _known_event_variable if event else VARIABLES.__contains__
    unknown = sorted({name for name in names if not known(name)})
    if unknown:
        allowed = ", ".join(sorted(EVENT_VARIABLES) + ["event.<field>"] if event else sorted(VARIABLES))
        fields = (f" (event fields: {', '.join(sorted(EVENT_FIELDS))}, event.data.<path>, event.payload.<path>)"
                  if event else "")
        raise TemplateError(f"unknown template variable(s) {', '.join(unknown)}; allowed: {allowed}{fields}")
    return names


def _known_event_variable(name: str) -> bool:
    if name in EVENT_VARIABLES:
        return True
    if not name.startswith(EVENT_PREFIX):
        return False
    head, _, rest = name[len(EVENT_PREFIX):].partition(".")
    if head not in EVENT_FIELDS:
        return False
    # Only the data and the payload have inner paths; each segment must be non-empty.
    return not rest or (head in EVENT_OBJECTS and all(rest.split(".")))


def render_template(template: str, values: Mapping[str, object]) -> str:
    template_variables(template)
    return _PLACEHOLDER.sub(lambda match: str(values.get(match.group(1), "")), template)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: object = _Missing()


def dotted_get(view: object, path: str) -> object:
    """``view``'s value at ``a.b.0.c`` (dict keys, list indexes), or ``MISSING``."""
    node = view
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def shown_value(value: object) -> str:
    """A value as template text: strings as they are, anything else as JSON, a missing one as nothing."""
    if value is MISSING or value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def render_event_template(template: str, values: Mapping[str, object], event: Mapping[str, object]) -> str:
    """An event subscription's template: ``values`` for the plain names, ``event`` for ``event.…``."""
    template_variables(template, event=True)

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith(EVENT_PREFIX):
            return shown_value(dotted_get(event, name[len(EVENT_PREFIX):]))
        return shown_value(values.get(name, ""))

    return _PLACEHOLDER.sub(value, template)
