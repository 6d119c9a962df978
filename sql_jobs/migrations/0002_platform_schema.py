"""The platform schema and the ``central`` stand-in: ``sql/0002_platform_schema.sql``."""

from __future__ import annotations

from django.db import migrations

from sql_jobs.sqlfiles import run_sql_file


class Migration(migrations.Migration):
    dependencies = [("sql_jobs", "0001_pg_cron")]
    operations = [run_sql_file("0002_platform_schema")]
