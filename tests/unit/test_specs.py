"""The canonical form of a spec: what the registry hashes and the plan diffs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from orchestrator.specs import (
    spec_hash,
    to_dict,
)
from tests.unit.conftest import DESIGN_EXAMPLE, job_yaml, load


def test_spec_hash__definition_only() -> None:
    """Moving a job or reordering its fields keeps its hash; editing a field changes it."""
    first = load(job_yaml("schedule: '@daily'\nsql: SELECT 1\ntimeout: 60")).jobs[0]
    moved = load(
        "version: 1\njobs:\n  other: {on: startup, task: tasks.knowledge.migrate}\n"
        "  job: {timeout: 1m, sql: SELECT 1, schedule: '@DAILY'}\n"
    ).jobs[1]
    edited = load(job_yaml("schedule: '@daily'\nsql: SELECT 1\ntimeout: 61")).jobs[0]
    assert (first.line, moved.line) == (3, 4)
    assert first == moved
    assert spec_hash(first) == spec_hash(moved)
    assert spec_hash(first) != spec_hash(edited)


def test_to_dict__json_and_complete() -> None:
    """The canonical dict is JSON, names every field, and carries no path or line."""
    spec = load(DESIGN_EXAMPLE).jobs[1]
    definition = to_dict(spec)
    assert json.loads(json.dumps(definition)) == definition
    assert definition == {
        "name": "hourly-backup",
        "trigger": {"kind": "cron", "expr": "@hourly"},
        "body": {"kind": "task", "task": "tasks.backup.backup_database"},
        "target": "auto",
        "enabled": True,
        "timezone": "UTC",
        "queue": "default",
        "args": [],
        "kwargs": {"kind": "hourly"},
        "retries": {"max": 3, "backoff": 60},
        "timeout": 900,
        "overlap": None,
        "max_runs": None,
        "expires": None,
        "database": "default",
        "tags": [],
        "description": "",
    }


def test_to_dict__nested_kwargs_and_expiry() -> None:
    """Nested JSON arguments survive freezing; instants are written in UTC, whatever offset the
    manifest used, because that is how the engines give them back (no drift)."""
    spec = load(
        job_yaml(
            "on: startup\ntask: tasks.embeddings.embed_pending\n"
            "args: [1, [2, 3], {a: null}]\nkwargs: {batch: {size: 50, models: [a, b]}}\n"
            "expires: 2030-01-01T00:00:00+01:00"
        )
    ).jobs[0]
    definition = to_dict(spec)
    assert definition["args"] == [1, [2, 3], {"a": None}]
    assert definition["kwargs"] == {"batch": {"size": 50, "models": ["a", "b"]}}
    assert definition["expires"] == "2029-12-31T23:00:00+00:00"
    assert spec.expires == datetime(2029, 12, 31, 23, tzinfo=UTC)
    assert hash(spec) == hash(spec)  # frozen all the way down
