"""Helpers for tests of the platform schema: raw connections and a clean slate.

Django flushes only its own tables after a ``transaction=True`` test; the ``platform`` and
``central`` schemas are ours to empty, before (so leftovers of an aborted run cannot skew a
result) and after (so the next test starts clean).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from django.db import connection

#: Every table of the platform schema and the central stand-in (the view refreshes from them).
PLATFORM_TABLES = (
    "platform.analysis_results",
    "platform.learned_patterns",
    "platform.knowledge_artifacts",
    "platform.templates",
    "platform.code_chunks",
    "platform.agents",
    "platform.agent_tasks",
    "platform.task_assignments",
    "platform.work_plan_items",
    "platform.metric_samples",
    "platform.graph_nodes",
    "platform.graph_edges",
    "platform.pagerank_runs",
    "platform.backup_metadata",
    "platform.backup_archive",
    "platform.registry_snapshots",
    "platform.vector_stats",
    "central.learned_patterns",
)
TRUNCATE = f"TRUNCATE {', '.join(PLATFORM_TABLES)} RESTART IDENTITY CASCADE"


def connect(*, autocommit: bool = False) -> psycopg.Connection:
    """A new connection to the test database, independent of Django's."""
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        host=settings["HOST"],
        port=settings["PORT"] or None,
        autocommit=autocommit,
        application_name="orchestrator-tests",
    )


def truncate_platform() -> None:
    with connect(autocommit=True) as conn:
        conn.execute(TRUNCATE)


@pytest.fixture
def clean_platform(transactional_db: None) -> Iterator[None]:
    """Committed-data tests: the platform tables are empty before and after the test."""
    truncate_platform()
    yield
    truncate_platform()


@pytest.fixture
def empty_platform(db: None) -> None:
    """Rolled-back tests: empty the platform tables inside the test's own transaction."""
    with connection.cursor() as cursor:
        cursor.execute(TRUNCATE)


def fetch(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """All rows of a query on the test's connection (none for a statement without rows)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def scalar(sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row."""
    return fetch(sql, params)[0][0]
