"""SQL kept as data: the migrations of this wing load ``sql_jobs/sql/*.sql`` through here.

SQL that lives in ``.sql`` files is read, diffed and linted as SQL rather than as Python string
literals. Each forward file has a ``.reverse.sql`` twin, so every migration can be unapplied.
A file that a migration loads is never edited once released: a change is a new numbered pair
(``CREATE OR REPLACE FUNCTION``), so an already-migrated database and a fresh one agree.
"""

from __future__ import annotations

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent / "sql"


def sql_text(name: str) -> str:
    """The text of ``sql_jobs/sql/<name>``."""
    return (SQL_DIR / name).read_text(encoding="utf-8")


def run_sql_file(stem: str) -> migrations.RunSQL:
    """A ``RunSQL`` operation applying ``<stem>.sql`` and reversing with ``<stem>.reverse.sql``."""
    return migrations.RunSQL(
        sql=sql_text(f"{stem}.sql"),
        reverse_sql=sql_text(f"{stem}.reverse.sql"),
        elidable=False,
    )
