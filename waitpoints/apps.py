from __future__ import annotations

from django.apps import AppConfig


class WaitpointsConfig(AppConfig):
    name = "waitpoints"
    verbose_name = "Waitpoints"
