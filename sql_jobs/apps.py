"""The SQL wing: everything that talks to pg_cron, and the SQL functions its jobs call."""

from __future__ import annotations

from django.apps import AppConfig


class SqlJobsConfig(AppConfig):
    name = "sql_jobs"
    verbose_name = "SQL jobs (pg_cron)"
