"""The project's settings, serving the bare insert view beside the API (``bench.events.bare_urls``).

Only the URL configuration differs, so the hook endpoint and the bare view run
in the same gunicorn workers, with the same middleware, database and broker.
"""
from __future__ import annotations

from scheduler_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.events.bare_urls"
