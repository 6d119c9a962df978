"""SQL kept as data: migrations load ``<app>/sql/*.sql`` through here.

SQL that lives in ``.sql`` files is read, diffed and linted as SQL rather than as Python string
literals. Each forward file has a ``.reverse.sql`` twin (or its migration names the earlier
forward file that undoes it), so every migration can be unapplied.
A file that a migration loads is never edited once released: a change is a new numbered pair
(``CREATE OR REPLACE FUNCTION``), so an already-migrated database and a fresh one agree.
"""

from __future__ import annotations

from pathlib import Path

from django.db import migrations


def sql_dir(migration_file: str) -> Path:
    """The ``sql/`` folder of the app that holds this migration module."""
    return Path(migration_file).resolve().parent.parent / "sql"


def run_sql_file(folder: Path, stem: str, *, reverse: str | None = None) -> migrations.RunSQL:
    """A ``RunSQL`` applying ``<stem>.sql`` and reversing with ``<stem>.reverse.sql``.

    ``reverse``: the stem of an earlier forward file to reverse with instead. A migration that
    only replaces a function (``CREATE OR REPLACE``) is undone by the previous version's own
    forward file, which is released and never edited: a copy of it would only drift.
    """
    undo = f"{reverse}.sql" if reverse is not None else f"{stem}.reverse.sql"
    return migrations.RunSQL(
        sql=(folder / f"{stem}.sql").read_text(encoding="utf-8"),
        reverse_sql=(folder / undo).read_text(encoding="utf-8"),
        elidable=False,
    )


def run_sql_file_for_jobs_role(folder: Path, stem: str) -> migrations.RunPython:
    """Like ``run_sql_file``, with the jobs role's name in the transaction's setting
    ``orchestrator.jobs_role`` (``settings.ORCHESTRATOR_JOBS_ROLE``), which the SQL reads with
    ``format('%I', ...)``: GRANT takes no parameters, and a name is never formatted in here."""

    def runner(name: str):
        def run(apps, schema_editor) -> None:
            from django.conf import settings

            with schema_editor.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('orchestrator.jobs_role', %s, true)",
                    [settings.ORCHESTRATOR_JOBS_ROLE],
                )
                cursor.execute((folder / f"{name}.sql").read_text(encoding="utf-8"))

        return run

    return migrations.RunPython(runner(stem), runner(f"{stem}.reverse"), elidable=False)
