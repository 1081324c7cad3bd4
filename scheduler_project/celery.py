"""The Celery app: configured from Django settings (namespace CELERY_)."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler_project.settings")

app = Celery("tickwise")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
