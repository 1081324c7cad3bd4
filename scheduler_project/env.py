"""Read settings from the environment, failing loudly on malformed values.

Each helper names the variable and the value it could not read, so a typo in a
deployment manifest stops the process at start-up instead of running with a
silently different setting.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of true/false/1/0/yes/no/on/off, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_alert_webhook(conf: dict) -> None:
    """A ``standard`` alert webhook is signed, so it needs a ``whsec_`` secret; Slack's may go unsigned."""
    url, secret = conf["ALERT_WEBHOOK_URL"], conf["ALERT_WEBHOOK_SECRET"]
    if url and urlsplit(url).scheme not in {"http", "https"}:
        raise ImproperlyConfigured(f"TICKWISE_ALERT_WEBHOOK_URL must be an http(s) URL, got {url!r}")
    if secret and not secret.startswith("whsec_"):
        raise ImproperlyConfigured("TICKWISE_ALERT_WEBHOOK_SECRET must be a Standard Webhooks secret (whsec_…)")
    if url and not secret and conf["ALERT_WEBHOOK_FORMAT"] == "standard":
        raise ImproperlyConfigured("TICKWISE_ALERT_WEBHOOK_URL is set with the standard format but "
                                   "TICKWISE_ALERT_WEBHOOK_SECRET is not: set a whsec_ secret to sign with")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


@dataclass(frozen=True)
class DatabaseUrl:
    name: str
    user: str
    password: str
    host: str
    port: str
    options: dict[str, str]

    def as_django(self) -> dict:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": self.name,
            "USER": self.user,
            "PASSWORD": self.password,
            "HOST": self.host,
            "PORT": self.port,
            "OPTIONS": {**self.options, "options": _utc_first(self.options.get("options", ""))},
            # Processes keep a checked connection instead of reconnecting on every
            # loop or task (workers too: see scheduler_project/celery.py).
            "CONN_MAX_AGE": env_int("TICKWISE_CONN_MAX_AGE", 60, minimum=0),
            "CONN_HEALTH_CHECKS": True,
        }


def _utc_first(options: str) -> str:
    """Start every session in UTC, ahead of any options from the URL.

    Django needs the connection in UTC (USE_TZ) and sends ``SET TIME ZONE`` on
    every new connection whose server reports anything else, even ``Etc/UTC``;
    asking for it in the startup packet saves that round trip.
    """
    return f"-c TimeZone=UTC {options}".strip()


def parse_database_url(name: str, raw: str) -> DatabaseUrl:
    """postgres://user:pass@host:port/dbname?sslmode=require (PostgreSQL only)."""
    parts = urlsplit(raw)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(
            f"{name} must be a postgres:// URL (Tickwise needs PostgreSQL), got scheme {parts.scheme!r}"
        )
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise ImproperlyConfigured(f"{name} must name one database in its path, got {parts.path!r}")
    try:
        port = str(parts.port or "")
    except ValueError:
        raise ImproperlyConfigured(f"{name} has a malformed port in {raw!r}") from None
    return DatabaseUrl(
        name=dbname,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        host=parts.hostname or "",
        port=port,
        options=dict(parse_qsl(parts.query)),
    )


def check_redis_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ImproperlyConfigured(f"{name} must be a redis://host:port/db URL, got {raw!r}")
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise ImproperlyConfigured(f"{name} database must be a number, got {db!r}")
    return raw
