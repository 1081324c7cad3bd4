"""Tickwise's admin site: its name in the header, the dashboard as its front page, its apps first.

This module is named in ``INSTALLED_APPS`` (``TickwiseAdminConfig`` replaces
``django.contrib.admin``), so it is imported while the app registry loads and
imports no models at module level.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse

# Tickwise's own apps, in the order an operator reaches for them; the rest follow alphabetically.
APP_ORDER = ("schedules", "runs", "events", "alerts", "workspaces")

# What the third-party apps hold here, said where their names alone would mislead.
APP_NOTES = {
    "django_celery_beat": "Housekeeping pulses (django-celery-beat; agent schedules are not here)",
    "django_celery_results": "Housekeeping results (last outcomes of the pulses; runs are in the ledger)",
}


class TickwiseAdminSite(admin.AdminSite):
    site_header = "Tickwise"
    site_title = "Tickwise"
    index_title = "Control room"
    index_template = "admin/tickwise/dashboard.html"
    # The app list is one click away (Home); its sidebar would take a fifth of a 1400 px screen from every list.
    enable_nav_sidebar = False

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["name"] = APP_NOTES.get(app["app_label"], app["name"])
        return sorted(apps, key=_app_rank)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        # Imported here: this class is loaded with the app registry, before any model.
        from shells.admin.dashboard import dashboard_context

        return super().index(request, extra_context={**dashboard_context(request), **(extra_context or {})})


def _app_rank(app: dict[str, Any]) -> tuple[int, str]:
    label = app["app_label"]
    return (APP_ORDER.index(label) if label in APP_ORDER else len(APP_ORDER), app["name"].lower())


class TickwiseAdminConfig(AdminConfig):
    default_site = "shells.adminsite.TickwiseAdminSite"
