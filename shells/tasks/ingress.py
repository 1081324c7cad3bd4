"""Celery tasks: webhook ingress housekeeping (the event ledger's retention)."""
from __future__ import annotations
