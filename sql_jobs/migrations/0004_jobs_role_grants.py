"""Grant the jobs role what the shipped catalog's SQL jobs need: ``sql/0004_jobs_role_grants.sql``.

The role's name travels as a setting of this transaction (``orchestrator.jobs_role``), read by
the SQL file with ``format('%I')``: never formatted into SQL here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations

from project.sqlfiles import sql_dir

FOLDER = sql_dir(__file__)


def _run(stem: str):
    def run(apps, schema_editor) -> None:
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('orchestrator.jobs_role', %s, true)",
                [settings.ORCHESTRATOR_JOBS_ROLE],
            )
            cursor.execute((FOLDER / f"{stem}.sql").read_text(encoding="utf-8"))

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("sql_jobs", "0003_platform_functions"),
        ("orchestrator", "0003_import_cron_runs"),
    ]
    operations = [
        migrations.RunPython(
            _run("0004_jobs_role_grants"),
            _run("0004_jobs_role_grants.reverse"),
            elidable=False,
        )
    ]
