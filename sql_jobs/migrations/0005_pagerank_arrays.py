"""PageRank over arrays and dense integer keys: ``sql_jobs/sql/0005_pagerank_arrays.sql``.

Replaces ``platform.recalculate_all_pagerank()`` of 0003 with the same signature and results;
the reverse file restores 0003's version.
"""

from __future__ import annotations

from django.db import migrations

from project.sqlfiles import run_sql_file, sql_dir


class Migration(migrations.Migration):
    dependencies = [("sql_jobs", "0004_jobs_role_grants")]
    operations = [run_sql_file(sql_dir(__file__), "0005_pagerank_arrays")]
