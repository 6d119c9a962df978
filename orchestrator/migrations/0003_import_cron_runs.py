"""Install ``orchestrator_import_cron_runs()``, the pg_cron run-history importer."""

from __future__ import annotations

from django.db import migrations

from project.sqlfiles import run_sql_file, sql_dir


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator", "0002_run_history"),
        ("sql_jobs", "0001_pg_cron"),
    ]
    operations = [run_sql_file(sql_dir(__file__), "0003_import_cron_runs")]
