"""Make sure the database offers pg_cron, or say exactly how to enable it.

pg_cron can only be created in the database named by ``cron.database_name`` and only when the
server preloads it; both are server settings a user must change by hand (or in a managed
service's parameter group), so the message spells out those steps rather than a driver error.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.db.backends.base.base import BaseDatabaseWrapper

from orchestrator.errors import PgCronUnavailable

logger = logging.getLogger(__name__)

EXTENSION_VERSION = "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'"
CREATE_EXTENSION = "CREATE EXTENSION IF NOT EXISTS pg_cron"
# pg_settings hides superuser-only rows from other roles instead of raising: safe to ask.
SETTINGS = """
    SELECT name, setting FROM pg_settings
     WHERE name = ANY(%s)
"""


def _how_to_enable(database: str, settings: dict[str, str], reason: str) -> str:
    preload = settings.get("shared_preload_libraries")
    cron_db = settings.get("cron.database_name")
    steps = []
    if preload is None or "pg_cron" not in preload:
        steps.append("add pg_cron to shared_preload_libraries in postgresql.conf")
    if cron_db != database:
        steps.append(f"set cron.database_name = '{database}' in postgresql.conf")
    if steps:
        steps.append("restart PostgreSQL")
    steps.append(f"run `CREATE EXTENSION pg_cron;` as a superuser in database '{database}'")
    numbered = "\n".join(f"  {index}. {step}" for index, step in enumerate(steps, 1))
    return (
        f"pg_cron is not available in database '{database}' ({reason}).\n"
        f"To enable it (on a managed PostgreSQL, set the same parameters in its "
        f"parameter group):\n{numbered}"
    )


def ensure_pg_cron(conn: BaseDatabaseWrapper | None = None) -> str:
    """Return the installed pg_cron version, creating the extension if we are allowed to."""
    conn = conn or connection
    with conn.cursor() as cursor:
        cursor.execute(EXTENSION_VERSION)
        row = cursor.fetchone()
        if row:
            return str(row[0])
        cursor.execute(
            SETTINGS, [["shared_preload_libraries", "cron.database_name", "server_version"]]
        )
        settings = dict(cursor.fetchall())
        cursor.execute("SELECT current_database()")
        database = str(cursor.fetchone()[0])
        try:
            cursor.execute(CREATE_EXTENSION)
        except DatabaseError as error:
            raise PgCronUnavailable(
                _how_to_enable(database, settings, str(error).strip().splitlines()[0])
            ) from error
        cursor.execute(EXTENSION_VERSION)
        version = str(cursor.fetchone()[0])
    logger.info("created extension pg_cron", extra={"version": version, "database": database})
    return version
