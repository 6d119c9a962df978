"""Shared fixtures of the pure unit tests: capabilities built in memory, manifests from text.

Nothing here touches a database: ``Capabilities`` are constructed the way ``read_capabilities``
would fill them, with a small ``pg_catalog`` of the functions the tests' SQL calls.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from orchestrator.engines.base import EngineFit
from orchestrator.engines.celery.fit import CeleryFit
from orchestrator.engines.pg_cron.capabilities import Capabilities
from orchestrator.engines.pg_cron.fit import PgCronFit
from orchestrator.manifest import Manifest, load_manifest_text
from orchestrator.specs import JobSpec

PATH = "jobs.yaml"
TASKS = frozenset(
    {
        "tasks.backup.backup_database",
        "tasks.knowledge.migrate",
        "tasks.embeddings.embed_pending",
        "orchestrator.run_sql",
    }
)
ALIASES = frozenset({"default", "analytics", "remote"})
#: The slice of pg_catalog the tests' SQL calls: name -> (language, trusted).
CATALOG = {
    "now": ("internal", False),
    "lower": ("internal", False),
    "count": ("internal", False),
    "pg_read_file": ("internal", False),
    "set_config": ("internal", False),
    "refresh_metrics": ("plpgsql", True),
    "learn_patterns": ("plpgsql", True),
    "compute_pagerank": ("sql", True),
    "sql_jobs.prune_events": ("plpgsql", True),
    "fetch_feed": ("plpython3u", False),
    "dblink_exec": ("c", False),
    "perl_report": ("plperl", True),
}


def pg_cron_14(**overrides: object) -> Capabilities:
    """pg_cron 1.4.2 in database 'app', as the embedded services run it."""
    values: dict[str, object] = {
        "functions": CATALOG,
        "database_names": {"default": "app", "analytics": "analytics"},
        "connectable_databases": frozenset({"app", "analytics", "postgres"}),
    }
    values.update(overrides)
    return Capabilities.with_pg_cron(**values)


def engines(capabilities: Capabilities) -> list[EngineFit]:
    """The shipped engines in their preference order, pg_cron judged with ``capabilities``."""
    return [PgCronFit(capabilities), CeleryFit()]


@pytest.fixture
def caps() -> Capabilities:
    return pg_cron_14()


def load(text: str, *, tasks: frozenset[str] | None = TASKS) -> Manifest:
    """A manifest from (dedented) text, validated against the tests' tasks and aliases."""
    return load_manifest_text(
        textwrap.dedent(text), path=PATH, task_names=tasks, database_aliases=ALIASES
    )


def job_yaml(fields: str, name: str = "job") -> str:
    """A one-job manifest; ``fields`` are the job's YAML lines (dedented, indented here)."""
    body = textwrap.indent(textwrap.dedent(fields).strip(), "    ")
    return f"version: 1\njobs:\n  {name}:\n{body}\n"


def one_job(fields: str, name: str = "job") -> JobSpec:
    manifest = load(job_yaml(fields, name))
    assert len(manifest) == 1
    return manifest.jobs[0]


@pytest.fixture
def make_job() -> Callable[..., JobSpec]:
    return one_job


#: The manifest example of DESIGN.md, loaded by several test modules.
DESIGN_EXAMPLE = """\
version: 1
defaults:            # every field below may be set here
  timezone: UTC
  queue: default
jobs:
  vacuum-analyze:
    schedule: "0 23 * * *"
    sql: VACUUM ANALYZE
    description: Optimize the query planner
  hourly-backup:
    schedule: "@hourly"
    task: tasks.backup.backup_database
    kwargs: {kind: hourly}
    retries: {max: 3, backoff: 60}
    timeout: 15m
  knowledge-migration:
    on: startup
    task: tasks.knowledge.migrate
"""
