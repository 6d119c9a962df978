"""SQL kept as data: migrations load ``<app>/sql/*.sql`` through here.

SQL that lives in ``.sql`` files is read, diffed and linted as SQL rather than as Python string
literals. Each forward file has a ``.reverse.sql`` twin, so every migration can be unapplied.
A file that a migration loads is never edited once released: a change is a new numbered pair
(``CREATE OR REPLACE FUNCTION``), so an already-migrated database and a fresh one agree.
"""

from __future__ import annotations

from pathlib import Path

from django.db import migrations


def sql_dir(migration_file: str) -> Path:
    """The ``sql/`` folder of the app that holds this migration module."""
    return Path(migration_file).resolve().parent.parent / "sql"


def run_sql_file(folder: Path, stem: str) -> migrations.RunSQL:
    """A ``RunSQL`` applying ``<stem>.sql`` and reversing with ``<stem>.reverse.sql``."""
    return migrations.RunSQL(
        sql=(folder / f"{stem}.sql").read_text(encoding="utf-8"),
        reverse_sql=(folder / f"{stem}.reverse.sql").read_text(encoding="utf-8"),
        elidable=False,
    )
