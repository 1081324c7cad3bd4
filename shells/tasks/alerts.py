"""Celery tasks: alerts."""
from __future__ import annotations
