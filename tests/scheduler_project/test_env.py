"""Settings helpers: every malformed value fails loudly, naming the variable."""
from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from scheduler_project.env import check_redis_url, env_bool, env_int, env_list, parse_database_url


@pytest.mark.parametrize("raw, expected", [("1", True), ("true", True), ("YES", True), ("on", True),
                                           ("0", False), ("false", False), ("no", False), ("", False)])
def test_env_bool_reads_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("DEBUG", raw)
    assert env_bool("DEBUG", not expected) is expected


def test_env_bool_rejects_anything_else(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG.*'maybe'"):
        env_bool("DEBUG", False)


def test_env_bool_default_when_unset(monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    assert env_bool("DEBUG", True) is True


def test_env_int_rejects_text_and_values_below_minimum(monkeypatch):
    monkeypatch.setenv("TICKWISE_BEAT_BATCH", "ten")
    with pytest.raises(ImproperlyConfigured, match="TICKWISE_BEAT_BATCH must be an integer"):
        env_int("TICKWISE_BEAT_BATCH", 1)
    monkeypatch.setenv("TICKWISE_BEAT_BATCH", "0")
    with pytest.raises(ImproperlyConfigured, match=">= 1"):
        env_int("TICKWISE_BEAT_BATCH", 1, minimum=1)


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", " a.example , b.example,,")
    assert env_list("ALLOWED_HOSTS", []) == ["a.example", "b.example"]


def test_database_url_parsed_into_django_settings():
    parsed = parse_database_url("DATABASE_URL", "postgres://u%40x:p%2Fw@db.local:6543/tick?sslmode=require")
    django = parsed.as_django()
    assert django["ENGINE"] == "django.db.backends.postgresql"
    assert (django["USER"], django["PASSWORD"], django["HOST"], django["PORT"], django["NAME"]) == (
        "u@x", "p/w", "db.local", "6543", "tick")
    assert django["OPTIONS"] == {"sslmode": "require", "options": "-c TimeZone=UTC"}


@pytest.mark.parametrize("raw, message", [
    ("mysql://u@h/db", "must be a postgres:// URL"),
    ("postgres://u@h/", "must name one database"),
    ("postgres://u@h:notaport/db", "malformed port"),
])
def test_database_url_rejects_malformed(raw, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        parse_database_url("DATABASE_URL", raw)


@pytest.mark.parametrize("raw", ["http://h:6379/0", "redis://", "redis://h:6379/zero"])
def test_redis_url_rejects_malformed(raw):
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        check_redis_url("REDIS_URL", raw)


def test_redis_url_accepts_db_number():
    assert check_redis_url("REDIS_URL", "redis://127.0.0.1:6379/1") == "redis://127.0.0.1:6379/1"


def test_connections_start_in_utc_without_a_set_time_zone(transactional_db, monkeypatch):
    from django.db import connections

    connection = connections["default"]
    sent = []
    configure = type(connection)._configure_timezone
    monkeypatch.setattr(type(connection), "_configure_timezone",
                        lambda self, conn: sent.append(configure(self, conn)) or sent[-1])
    connection.close()
    connection.ensure_connection()
    assert sent == [False]  # Django found the session in UTC and sent no SET TIME ZONE
    assert connection.connection.info.parameter_status("TimeZone") == "UTC"
