"""``read_capabilities`` against the live database: the embedded PostgreSQL 15 with pg_cron 1.4."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from orchestrator.classifier import classify
from orchestrator.engines.celery.fit import CeleryFit
from orchestrator.engines.pg_cron.capabilities import FunctionInfo, read_capabilities
from orchestrator.engines.pg_cron.fit import PgCronFit
from orchestrator.errors import ServiceError
from orchestrator.manifest import load_manifest_text

pytestmark = pytest.mark.django_db


def test_capabilities__pg_cron_1_4_gmt_only() -> None:
    """pg_cron 1.4 is installed here, in cron.database_name, without seconds or time zones."""
    caps = read_capabilities(connection)
    assert caps.online
    assert caps.pg_cron_installed
    assert caps.pg_cron_version == (1, 4)
    assert caps.pg_cron_label == "pg_cron 1.4"
    assert caps.cron_database_name == caps.current_database
    assert not caps.supports_seconds
    assert not caps.supports_timezone
    assert caps.cron_timezone is None  # the setting only exists from pg_cron 1.5 on
    assert isinstance(caps.use_background_workers, bool)
    assert isinstance(caps.max_running_jobs, int)
    assert caps.max_running_jobs > 0
    assert caps.server_timezone


def test_capabilities__databases_the_role_may_reach() -> None:
    """The current database is connectable; template databases are never listed."""
    caps = read_capabilities(connection)
    assert caps.current_database in caps.connectable_databases
    assert "template0" not in caps.connectable_databases
    assert caps.database_names == {"default": caps.current_database}


def test_capabilities__function_languages_from_pg_catalog() -> None:
    """Functions are looked up by name: built-ins are 'internal'; missing ones come back empty."""
    caps = read_capabilities(connection, function_names=["now", "LOWER", "no_such_function_x"])
    assert FunctionInfo("pg_catalog", "now", "internal", False) in (
        caps.functions_named(None, "now") or ()
    )
    assert caps.functions_named("pg_catalog", "lower")
    assert caps.functions_named(None, "no_such_function_x") == ()
    assert caps.functions_named(None, "never_asked") is None


def test_capabilities__placement_with_the_live_database() -> None:
    """With what this server offers, VACUUM goes to pg_cron and a Berlin schedule to Celery."""
    manifest = load_manifest_text(
        "version: 1\njobs:\n"
        "  vacuum: {schedule: '0 23 * * *', sql: VACUUM ANALYZE}\n"
        "  berlin: {schedule: '0 3 * * *', timezone: Europe/Berlin, sql: SELECT now()}\n",
        path="jobs.yaml",
    )
    caps = read_capabilities(connection, function_names=manifest.function_names())
    vacuum, berlin = (classify(spec, [PgCronFit(caps), CeleryFit()]) for spec in manifest)
    assert vacuum.target == "pg_cron"
    assert berlin.target == "celery"
    assert (
        "Not pg_cron: pg_cron 1.4 runs schedules in GMT only; this job asks for Europe/Berlin."
        in berlin.reasons
    )


def test_capabilities__plain_psycopg_connection() -> None:
    """A psycopg connection works as well as Django's (same parameter style)."""
    with psycopg.connect(settings.DATABASE_URL) as raw:
        caps = read_capabilities(raw, function_names=["now"])
    assert caps.pg_cron_installed
    assert caps.functions_named(None, "now")


def test_capabilities__unreachable_database_is_a_service_error() -> None:
    """A connection that cannot answer is one ServiceError, not a driver traceback."""
    raw = psycopg.connect(settings.DATABASE_URL)
    raw.close()
    with pytest.raises(ServiceError, match="cannot read the database's capabilities"):
        read_capabilities(raw)
