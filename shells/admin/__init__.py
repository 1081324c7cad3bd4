"""Django admin for the registry and the ledger."""
from __future__ import annotations

from . import runs, schedules  # noqa: F401  (each module registers its ModelAdmins)
