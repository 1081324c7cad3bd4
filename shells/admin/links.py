"""Links between the admin's pages: to an object's change page, and to a run's."""
from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString


def change_link(obj: Any, label: str) -> SafeString:
    """``label`` linked to ``obj``'s admin page; the label alone (escaped) for a model the admin does not show."""
    try:
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return format_html("{}", label)
    return format_html('<a href="{}">{}</a>', url, label)


def run_link(run_id: int | None, label: str | None = None) -> SafeString:
    """A run's page by id (no row read), labelled with the id unless told; "-" for no run."""
    if run_id is None:
        return SafeString("-")
    return format_html('<a href="{}">{}</a>', reverse("admin:runs_run_change", args=[run_id]),
                       run_id if label is None else label)
