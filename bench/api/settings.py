"""The project's settings, serving the bare views beside the API (``bench.api.bare_urls``).

Only the URL configuration differs, so the API and the bare views run in the
same gunicorn workers, with the same middleware, database and broker.
"""
from __future__ import annotations

from scheduler_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api.bare_urls"
