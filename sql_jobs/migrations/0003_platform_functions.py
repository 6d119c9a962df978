"""The SQL functions the pure-SQL jobs call: ``sql_jobs/sql/0003_platform_functions.sql``."""

from __future__ import annotations

from django.db import migrations

from project.sqlfiles import run_sql_file, sql_dir


class Migration(migrations.Migration):
    dependencies = [("sql_jobs", "0002_platform_schema")]
    operations = [run_sql_file(sql_dir(__file__), "0003_platform_functions")]
