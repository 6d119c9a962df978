"""The platform schema and the ``central`` stand-in: ``sql/0002_platform_schema.sql``."""

from __future__ import annotations

from django.db import migrations

from project.sqlfiles import run_sql_file, sql_dir


class Migration(migrations.Migration):
    dependencies = [("sql_jobs", "0001_pg_cron")]
    operations = [run_sql_file(sql_dir(__file__), "0002_platform_schema")]
