"""The browser tests' server: the project's settings, with every server error's traceback in the server's log.

With DEBUG off Django reports a 500 only to ``mail_admins``; a failing
browser test should show why in ``admin-gunicorn.log``.
"""
from __future__ import annotations

from scheduler_project.settings import *  # noqa: F403
from scheduler_project.settings import LOGGING

LOGGING["loggers"]["django.request"] = {"handlers": ["console"], "level": "ERROR", "propagate": False}
