"""The upkeep jobs' SQL as owner functions the jobs role may call (``sql/0005_...sql``)."""

from __future__ import annotations

from django.db import migrations

from project.sqlfiles import run_sql_file_for_jobs_role, sql_dir


class Migration(migrations.Migration):
    dependencies = [("orchestrator", "0004_managed_job_status_fields")]
    operations = [run_sql_file_for_jobs_role(sql_dir(__file__), "0005_upkeep_as_jobs_role")]
