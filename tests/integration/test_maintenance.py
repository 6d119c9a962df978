"""Owner-only maintenance of the shipped catalog (``tasks.maintenance``): it runs on the owner's
connection, where PostgreSQL lets it do its work, while SQL jobs run as the jobs role."""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError, connection

from orchestrator import desired
from tasks import maintenance
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def last_analyze(table: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
            "WHERE schemaname = 'platform' AND relname = %s",
            [table],
        )
        return cursor.fetchone()[0]


def analyzed_after(table: str, moment: object) -> bool:
    """Whether the table's statistics are newer than ``moment`` (PostgreSQL reports its
    statistics within a second or so)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        latest = last_analyze(table)
        if latest is not None and (moment is None or latest > moment):
            return True
        time.sleep(0.3)
    return False


def test_maintenance__vacuum_analyze_and_analyze_reach_the_platform_tables() -> None:
    """VACUUM (ANALYZE) and ANALYZE finish and refresh the statistics of a platform table the
    jobs role could not analyze."""
    before = last_analyze("agents")
    assert maintenance.vacuum_analyze() == "VACUUM"
    assert analyzed_after("agents", before)
    after_vacuum = last_analyze("agents")
    assert maintenance.analyze() == "ANALYZE"
    assert analyzed_after("agents", after_vacuum)


def test_maintenance__reindex_schema_quotes_the_name() -> None:
    """REINDEX SCHEMA CONCURRENTLY works on platform; a name holding SQL is one identifier
    that names no schema."""
    assert maintenance.reindex_schema("platform") == "REINDEX"
    with pytest.raises(DatabaseError, match="does not exist"):
        maintenance.reindex_schema("platform; DROP TABLE platform.agents")


def test_maintenance__catalog_places_owner_only_jobs_on_celery() -> None:
    """The shipped catalog validates, and its owner-only maintenance jobs run on Celery while
    its SQL jobs stay in pg_cron."""
    placed = {job.spec.name: job.engine for job in desired.place(desired.load(ROOT / "jobs.yaml"))}
    for name in ("vacuum-analyze", "table-statistics", "index-reindex"):
        assert placed[name] == "celery", name
    assert placed["pagerank-recalculation"] == "pg_cron"
