"""Tickwise settings, all read from the environment (see README "Configuration").

Importing them starts nothing and writes nothing. Without DATABASE_URL or
REDIS_URL they use the embedded servers that ``./tickwise`` has running (read
from the state folder), and otherwise stop with one message saying what to set.
"""
from __future__ import annotations

import os
import zoneinfo
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .embedded import running_urls
from .embedded.state import state_dir
from .env import (
    check_alert_webhook,
    check_redis_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    parse_database_url,
)
from .logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

# Every ZoneInfo (Django's conversions included) reads the pinned ``tzdata``
# package, never the host's tz database, so every node computes the same instants.
zoneinfo.reset_tzpath(to=[])


# Each server URL, and the embedded server that stands in for it when unset.
EMBEDDED_SERVERS = {"DATABASE_URL": "PostgreSQL", "REDIS_URL": "Redis"}


def _server_urls() -> tuple[str, str]:
    urls = {name: os.environ.get(name, "") for name in EMBEDDED_SERVERS}
    if not all(urls.values()):
        embedded = running_urls()  # a read of the state folder, never a start
        urls = {name: value or embedded.get(name, "") for name, value in urls.items()}
    unset = [name for name, value in urls.items() if not value]
    if unset:
        raise ImproperlyConfigured(_no_server_message(unset))
    return urls["DATABASE_URL"], urls["REDIS_URL"]


def _no_server_message(unset: list[str]) -> str:
    one = len(unset) == 1
    return (f"{' and '.join(unset)} {'is' if one else 'are'} not set and the embedded "
            f"{' and '.join(EMBEDDED_SERVERS[name] for name in unset)} {'is' if one else 'are'} not running "
            f"(state folder {state_dir()}): set {'it' if one else 'them'}, or start the embedded servers "
            "with `./tickwise servers start`")


DATABASE_URL, REDIS_URL = _server_urls()

DEBUG = env_bool("DEBUG", False)
# The fallback key is for local stacks only; system check tickwise.W001 flags it.
SECRET_KEY = env_str("SECRET_KEY", "tickwise-insecure-development-key-change-me-0123456789")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "shells.adminsite.TickwiseAdminConfig",  # django.contrib.admin with Tickwise's site (shells/adminsite.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # its Swagger UI and ReDoc assets, served locally (no CDN)
    "django_celery_beat",
    "django_celery_results",
    "workspaces",
    "alerts",
    "schedules",
    "runs",
    "events",
    "waitpoints",
    "shells",
]

# No GZipMiddleware: it would turn the API's strong ETags into weak ones.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "scheduler_project.urls"
WSGI_APPLICATION = "scheduler_project.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": parse_database_url("DATABASE_URL", DATABASE_URL).as_django()}
# Concurrent test runs on one server each get their own database (see cli.cmd_test).
DATABASES["default"]["TEST"] = {"NAME": env_str("TICKWISE_TEST_DATABASE", "test_tickwise")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
# whitenoise serves the admin's and the API docs' assets from the apps
# themselves (no STATIC_ROOT, no collectstatic step), in a container or on a laptop.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOG_FORMAT = env_choice("TICKWISE_LOG_FORMAT", "plain", ("plain", "json"))
# Plain text by default; json: one object per line, with the run's context (scheduler_project/logs.py).
LOGGING = logging_config(LOG_FORMAT, level=env_str("TICKWISE_LOG_LEVEL", "INFO"))

# --- Celery (namespace CELERY_) -------------------------------------------
CELERY_BROKER_URL = check_redis_url("REDIS_URL", REDIS_URL)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# A run is acknowledged only after it finished, and a worker child killed mid-run
# puts the message back: the claim in PostgreSQL makes the redelivery harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message per worker process: a long run never holds a short one hostage.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("TICKWISE_TASK_SOFT_TIME_LIMIT", 3600, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("TICKWISE_TASK_TIME_LIMIT", 3660, minimum=1)
# Redis redelivers an unacked message after this many seconds from reservation;
# it must exceed the longest run, and the claim makes an early redelivery a no-op.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("TICKWISE_VISIBILITY_TIMEOUT", 7200, minimum=60),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's consumer with one fix: a Redis restart while a worker holds a
# message must not end the worker (see scheduler_project.celery.Consumer).
CELERY_WORKER_CONSUMER = "scheduler_project.celery:Consumer"
CELERY_TASK_DEFAULT_QUEUE = env_str("TICKWISE_QUEUE", "tickwise")
CELERY_BEAT_SCHEDULER = "triggers.beat:TickwiseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after each
# task unless this is set, so each run would open a new PostgreSQL connection
# (more CPU than the run's own queries). With it, a worker's connections follow
# CONN_MAX_AGE and the health checks, as a web request's do: see
# ``scheduler_project.celery``.
CELERY_DB_REUSE_MAX = 1_000_000

# --- Tickwise ---------------------------------------------------------------
TICKWISE: dict[str, Any] = {
    # Upper bound of one beat sleep; a Redis notice wakes it sooner.
    "BEAT_MAX_SLEEP": env_int("TICKWISE_BEAT_MAX_SLEEP", 5, minimum=1),
    # Schedules claimed per beat transaction.
    "BEAT_BATCH": env_int("TICKWISE_BEAT_BATCH", 500, minimum=1),
    # Extra seconds a run's lease lasts beyond its timeout before the reaper may act.
    "LEASE_MARGIN": env_int("TICKWISE_LEASE_MARGIN", 30, minimum=1),
    # Only when the broker cannot count its queue: a run still pending this long
    # after its message was sent is published again. Otherwise the outbox sweeper
    # resends exactly the runs whose message has left the queue unclaimed, within
    # seconds (docs/execution.md, "Lost messages").
    "REPUBLISH_AFTER": env_int("TICKWISE_REPUBLISH_AFTER", 300, minimum=10),
    # Finished runs older than this are deleted by the retention pulse.
    "RETENTION_DAYS": env_int("TICKWISE_RETENTION_DAYS", 90, minimum=1),
    # Modules (and their submodules) the ``python`` adapter may call into: an
    # agent's config is editable in the admin, the worker is not a sandbox.
    "PYTHON_CALLABLES": env_list("TICKWISE_PYTHON_CALLABLES", ["adapters.examples"]),
    # The REST API at /api/v1/; false answers every /api/ route with a 404.
    "API_ENABLED": env_bool("TICKWISE_API_ENABLED", True),
    # Completion webhooks (docs/events.md): the Standard Webhooks secret (whsec_…) they are
    # signed with, each request's timeout, and the retries before a delivery is dead.
    "WEBHOOK_SIGNING_SECRET": env_str("TICKWISE_WEBHOOK_SECRET", ""),
    "OUTBOUND_TIMEOUT": env_int("TICKWISE_OUTBOUND_TIMEOUT", 10, minimum=1),
    "OUTBOUND_MAX_ATTEMPTS": env_int("TICKWISE_OUTBOUND_MAX_ATTEMPTS", 12, minimum=1),
    "OUTBOUND_BACKOFF": env_int("TICKWISE_OUTBOUND_BACKOFF", 5, minimum=1),
    "OUTBOUND_BACKOFF_MAX": env_int("TICKWISE_OUTBOUND_BACKOFF_MAX", 7200, minimum=1),
    # Inbound events are kept this many days (at least 7: senders retry for days,
    # and a purged event could be accepted again as new). docs/events.md.
    "EVENT_RETENTION_DAYS": env_int("TICKWISE_EVENT_RETENTION_DAYS", 7, minimum=7),
    # The ingress fast path (duplicates, rate limits); empty turns it off. docs/events.md.
    "EVENTS_REDIS_URL": env_str("TICKWISE_EVENTS_REDIS_URL", REDIS_URL),
    # Where this server answers, for the admin's "Send test event"; empty: call the service directly.
    "PUBLIC_URL": env_str("TICKWISE_PUBLIC_URL", ""),
}

# --- Autonomy: run tokens, the agent's tools (docs/autonomy.md) -------------
TICKWISE.update({
    # A run's token keeps working this many seconds after the run ended, for a tool call in flight.
    "RUN_TOKEN_GRACE": env_int("TICKWISE_RUN_TOKEN_GRACE", 60, minimum=0),
    # Tool rounds the openai adapter takes in one run before it stops offering tools.
    "TOOL_ROUNDS": env_int("TICKWISE_TOOL_ROUNDS", 8, minimum=1),
})

# --- Alerts, metrics and logs (docs/operations.md) ---------------------------
TICKWISE.update({
    # An open alert episode is sent again at most once per cool-down (seconds).
    "ALERT_COOLDOWN": env_int("TICKWISE_ALERT_COOLDOWN", 3600, minimum=0),
    "ALERT_WEBHOOK_URL": env_str("TICKWISE_ALERT_WEBHOOK_URL", ""),
    "ALERT_WEBHOOK_FORMAT": env_choice("TICKWISE_ALERT_WEBHOOK_FORMAT", "standard", ("standard", "slack")),
    "ALERT_WEBHOOK_SECRET": env_str("TICKWISE_ALERT_WEBHOOK_SECRET", ""),
    "ALERT_EMAILS": env_list("TICKWISE_ALERT_EMAILS", []),
    # Dead runs (the dead-letter queue) at which the housekeeping pulse raises dlq_growth.
    "ALERT_DLQ_THRESHOLD": env_int("TICKWISE_ALERT_DLQ_THRESHOLD", 10, minimum=1),
    # The beat's watchdog: every this many loops, a pulse whose last success is older
    # than STALL_FACTOR times its interval raises housekeeping_stalled.
    "WATCHDOG_EVERY": env_int("TICKWISE_WATCHDOG_EVERY", 60, minimum=1),
    "HOUSEKEEPING_STALL_FACTOR": env_int("TICKWISE_HOUSEKEEPING_STALL_FACTOR", 4, minimum=2),
    # /metrics answers only a request with "Authorization: Bearer <this>"; unset, it answers 403.
    "METRICS_TOKEN": env_str("TICKWISE_METRICS_TOKEN", ""),
})
check_alert_webhook(TICKWISE)

# Email (alerts to TICKWISE_ALERT_EMAILS): Django's mail settings, under their own names.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "tickwise@localhost")
if os.environ.get("EMAIL_FILE_PATH"):  # the file backend (a local stack, the tests)
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
