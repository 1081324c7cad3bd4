"""The browser tests' server: the project's settings, with every server error's traceback in the server's log.

With DEBUG off Django reports a 500 only to ``mail_admins``; a failing
browser test should show why in ``admin-gunicorn.log``.

One server serves the whole session while each test's database is emptied
and refilled, so content types come back under new ids; the server forgets
its cached ones at every request (production never has its content types
deleted under it).
"""
from __future__ import annotations

from scheduler_project.settings import *  # noqa: F403
from scheduler_project.settings import LOGGING, MIDDLEWARE

LOGGING["loggers"]["django.request"] = {"handlers": ["console"], "level": "ERROR", "propagate": False}
MIDDLEWARE = ["tests.shells.browser.server_settings.forget_content_types", *MIDDLEWARE]


def forget_content_types(get_response):
    from django.contrib.contenttypes.models import ContentType

    def middleware(request):
        ContentType.objects.clear_cache()
        return get_response(request)

    return middleware
