"""Django admin for the registry, the ledger, and workspaces with their keys and audit trail."""
from __future__ import annotations

from . import alerts, events, outbound, runs, schedules, subscriptions, waitpoints, workspaces  # noqa: F401  (each module registers its ModelAdmins)
