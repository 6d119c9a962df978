"""The embedded services are the real thing: pg_cron runs jobs (its real run is checked in
``test_pg_cron_minute``, on a shared minute), Redis carries Celery tasks."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper

from orchestrator.engines.pg_cron.preflight import ensure_pg_cron
from orchestrator.errors import PgCronUnavailable


@pytest.mark.django_db
def test_pg_cron__is_preloaded_with_background_workers() -> None:
    """The test cluster preloads pg_cron 1.4 in this database and runs jobs in workers."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('cron.database_name'), "
            "current_setting('cron.use_background_workers'), current_database()"
        )
        cron_db, background, database = cursor.fetchone()
    assert ensure_pg_cron().startswith("1.4")
    assert cron_db == database
    assert background == "on"


def test_celery__task_round_trips_through_redis_to_a_real_worker(celery_worker) -> None:
    """A task sent through the real Redis runs on the worker the test started, and its
    result comes back through the result backend."""
    from orchestrator.engines.celery.health import ping

    token = uuid.uuid4().hex
    result = ping.delay(token).get(timeout=30)
    assert result["token"] == token
    assert result["pid"] != 0
    assert celery_worker.hostname.startswith("test-")


@pytest.mark.django_db(transaction=True)
def test_preflight__database_without_pg_cron_says_how_to_enable_it() -> None:
    """Pointed at a PostgreSQL database without pg_cron, the preflight refuses with the steps
    that enable it (cron.database_name, restart, CREATE EXTENSION), not a driver error."""
    name = f"nocron_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    other = DatabaseWrapper({**connection.settings_dict, "NAME": name}, alias="nocron")
    try:
        with pytest.raises(PgCronUnavailable) as caught:
            ensure_pg_cron(other)
        message = str(caught.value)
        assert f"pg_cron is not available in database '{name}'" in message
        assert f"set cron.database_name = '{name}'" in message
        assert "restart PostgreSQL" in message
        assert "CREATE EXTENSION pg_cron" in message
    finally:
        other.close()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
