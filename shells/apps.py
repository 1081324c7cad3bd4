from __future__ import annotations

from django.apps import AppConfig


class ShellsConfig(AppConfig):
    name = "shells"
    verbose_name = "Tickwise entry points"
