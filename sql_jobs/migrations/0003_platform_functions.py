"""The SQL functions the pure-SQL jobs call: ``sql_jobs/sql/0003_platform_functions.sql``."""

from __future__ import annotations

from django.db import migrations

from sql_jobs.sqlfiles import run_sql_file


class Migration(migrations.Migration):
    dependencies = [("sql_jobs", "0002_platform_schema")]
    operations = [run_sql_file("0003_platform_functions")]
