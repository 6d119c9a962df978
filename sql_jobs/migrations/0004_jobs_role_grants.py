"""Grant the jobs role what the catalog's SQL jobs need: ``sql/0004_jobs_role_grants.sql``."""

from __future__ import annotations

from django.db import migrations

from project.sqlfiles import run_sql_file_for_jobs_role, sql_dir


class Migration(migrations.Migration):
    dependencies = [("sql_jobs", "0003_platform_functions")]
    operations = [run_sql_file_for_jobs_role(sql_dir(__file__), "0004_jobs_role_grants")]
