"""Celery tasks: events."""
from __future__ import annotations
