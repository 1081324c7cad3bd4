"""Input templates: plain ``{{variable}}`` substitution, no code execution.

The variable set is closed; an unknown name is a validation error when the
schedule is saved, never a surprise at fire time.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

VARIABLES = frozenset({
    "date", "day_of_week", "timestamp", "run_number", "tick_at",
    "period_start", "period_end", "schedule",
})
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class TemplateError(ValueError):
    pass


def template_variables(template: str) -> list[str]:
    """The names used by ``template``; raises TemplateError on any malformed part."""
    names = [match.group(1) for match in _PLACEHOLDER.finditer(template)]
    leftover = _PLACEHOLDER.sub("", template)
    if "{{" in leftover or "}}" in leftover:
        raise TemplateError("unbalanced '{{' or '}}' in the input template")
    unknown = sorted({name for name in names if name not in VARIABLES})
    if unknown:
        allowed = ", ".join(sorted(VARIABLES))
        raise TemplateError(f"unknown template variable(s) {', '.join(unknown)}; allowed: {allowed}")
    return names


def render_template(template: str, values: Mapping[str, object]) -> str:
    template_variables(template)
    return _PLACEHOLDER.sub(lambda match: str(values.get(match.group(1), "")), template)
