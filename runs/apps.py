from __future__ import annotations

from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from . import checks, outbound  # noqa: F401  (the delivery ledger's models; system checks)
