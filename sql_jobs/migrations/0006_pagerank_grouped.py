"""PageRank's edge pass as a grouped scan in target order (``sql/0006_pagerank_grouped.sql``).

Replaces ``platform.recalculate_all_pagerank()`` of 0005 with the same signature and results;
unapplied, 0005's own file restores 0005's version.
"""

from __future__ import annotations

from django.db import migrations

from project.sqlfiles import run_sql_file, sql_dir


class Migration(migrations.Migration):
    dependencies = [("sql_jobs", "0005_pagerank_arrays")]
    operations = [
        run_sql_file(sql_dir(__file__), "0006_pagerank_grouped", reverse="0005_pagerank_arrays")
    ]
