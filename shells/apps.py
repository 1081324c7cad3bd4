from __future__ import annotations

from django.apps import AppConfig


class ShellsConfig(AppConfig):
    name = "shells"
    verbose_name = "Tickwise entry points"

    def ready(self) -> None:
        # The agent's tools plug into the ledger's execute path from above
        # (runs.services.hooks): in every process, web, worker and beat alike.
        from triggers.tools.hooks import tools_install

        tools_install()
