"""Owner-only maintenance: VACUUM, ANALYZE and REINDEX of the application's database.

SQL jobs run as the jobs role, which owns nothing (README, "Security"), and PostgreSQL 15 has
no privilege to lend for these: only a table's owner (or the database's) may VACUUM or ANALYZE
it, only a schema's owner may REINDEX SCHEMA, and none of them may run inside a function, so a
SECURITY DEFINER wrapper cannot help (PostgreSQL 17's MAINTAIN privilege would). As pg_cron
jobs they would skip every table with a warning, or fail. So they are application code, run by
Celery on the owner's connection: the statements are fixed here, reviewed like any code, and a
manifest names only the task and, for REINDEX, a schema (quoted as an identifier).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import connection
from psycopg import sql

logger = logging.getLogger(__name__)


def _run(statement: sql.Composable | str) -> str:
    """One statement in autocommit (Django's default), as VACUUM and REINDEX CONCURRENTLY need."""
    with connection.cursor() as cursor:
        text = statement if isinstance(statement, str) else statement.as_string(cursor.cursor)
        cursor.execute(text)
        return cursor.cursor.statusmessage or ""


@shared_task(name="tasks.maintenance.vacuum_analyze")
def vacuum_analyze() -> str:
    """VACUUM (ANALYZE) every table of the database the owner may vacuum (all but the shared
    catalogs, which are the superuser's)."""
    status = _run("VACUUM (ANALYZE, SKIP_LOCKED)")
    logger.info("vacuum analyze done", extra={"status": status})
    return status


@shared_task(name="tasks.maintenance.analyze")
def analyze() -> str:
    """Refresh the planner's statistics of every table."""
    status = _run("ANALYZE (SKIP_LOCKED)")
    logger.info("analyze done", extra={"status": status})
    return status


@shared_task(name="tasks.maintenance.reindex_schema")
def reindex_schema(schema: str) -> str:
    """Rebuild the indexes of ``schema`` without blocking writers."""
    status = _run(sql.SQL("REINDEX SCHEMA CONCURRENTLY {}").format(sql.Identifier(schema)))
    logger.info("reindex done", extra={"schema": schema, "status": status})
    return status
