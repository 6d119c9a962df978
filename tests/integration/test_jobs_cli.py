"""``manage.py jobs validate`` and ``jobs explain``: exit codes, exact lines, the JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, service_env
from tests.integration.cli_helpers import jobs

pytestmark = pytest.mark.django_db

MANIFEST = """\
version: 1
defaults:
  timezone: UTC
jobs:
  vacuum-analyze:
    schedule: "0 23 * * *"
    sql: VACUUM ANALYZE
  berlin-retention:
    schedule: "30 4 * * *"
    timezone: Europe/Berlin
    sql: DELETE FROM django_session WHERE expire_date < now()
  ping:
    schedule: every 7m
    task: orchestrator.ping
  dump:
    on: startup
    command: pg_dump --format=custom --file=/tmp/orchestrator-test.dump
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "jobs.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_validate__ok_summary(tmp_path: Path) -> None:
    """A valid manifest: exit 0 and one line with the count per engine."""
    path = write(tmp_path, MANIFEST)
    assert jobs("validate", "--manifest", path) == (
        0,
        f"{path}: OK, 4 jobs: 1 on pg_cron, 3 on Celery\n",
        "",
    )


def test_validate__every_error_located(tmp_path: Path) -> None:
    """An invalid manifest: exit 1, one 'PATH:LINE: job: field: message' line per error."""
    path = write(
        tmp_path,
        """\
        version: 1
        jobs:
          good: {schedule: '@daily', sql: SELECT 1}
          bad:
            schedule: '0 0 * *'
            task: orchestrator.pong
            timout: 5m
        """,
    )
    status, stdout, stderr = jobs("validate", "--manifest", path)
    assert (status, stdout) == (1, "")
    assert stderr.splitlines() == [
        f"{path}:5: job 'bad': schedule: expected 5 fields (minute hour day-of-month month "
        "day-of-week), got 4",
        f"{path}:6: job 'bad': task: no task 'orchestrator.pong' is registered in the Celery app "
        "(did you mean 'orchestrator.ping'?)",
        f"{path}:7: job 'bad': timout: unknown field (did you mean 'timeout'?)",
        f"{path}: 3 errors",
    ]


def test_validate__placement_errors_fail_validation(tmp_path: Path) -> None:
    """A target the engine cannot honour fails validate, located at the field responsible."""
    path = write(
        tmp_path,
        """\
        version: 1
        jobs:
          forced:
            schedule: '0 3 * * *'
            target: pg_cron
            timezone: Europe/Berlin
            sql: SELECT 1
        """,
    )
    status, _, stderr = jobs("validate", "--manifest", path)
    assert status == 1
    assert stderr.splitlines() == [
        f"{path}:6: job 'forced': timezone: target pg_cron cannot run this job: pg_cron 1.4 runs "
        "schedules in GMT only; this job asks for Europe/Berlin.",
        f"{path}: 1 error",
    ]


def test_validate__hostile_file_is_one_line(tmp_path: Path) -> None:
    """Binary junk is refused with a located line and exit 1, never a traceback."""
    path = tmp_path / "jobs.yaml"
    path.write_bytes(b"version: 1\njobs:\n  \xff\xfe: {}\n")
    status, _, stderr = jobs("validate", "--manifest", str(path))
    assert status == 1
    assert stderr.splitlines() == [
        f"{path}:3: not UTF-8: byte 0xff cannot be decoded",
        f"{path}: 1 error",
    ]


def test_explain__json_shape(tmp_path: Path) -> None:
    """--format json prints exactly one object: name, target, reasons, next_runs with offsets."""
    path = write(tmp_path, MANIFEST)
    status, stdout, stderr = jobs(
        "explain", "berlin-retention", "--manifest", path, "--format", "json",
        "--next", "3", "--after", "2025-03-29T12:00:00+00:00",
    )  # fmt: skip
    assert (status, stderr) == (0, "")
    document = json.loads(stdout)
    assert list(document) == ["name", "target", "reasons", "next_runs"]
    assert document["name"] == "berlin-retention"
    assert document["target"] == "celery"
    assert document["reasons"] == [
        "Not pg_cron: pg_cron 1.4 runs schedules in GMT only; this job asks for Europe/Berlin.",
        "Celery runs the SQL with a task, as one transaction.",
        "Celery beat runs it: cron '30 4 * * *' in Europe/Berlin.",
    ]
    assert document["next_runs"] == [
        "2025-03-30T04:30:00+02:00",
        "2025-03-31T04:30:00+02:00",
        "2025-04-01T04:30:00+02:00",
    ]


def test_explain__text(tmp_path: Path) -> None:
    """The text form: engine, schedule, reasons and next runs in the job's zone."""
    path = write(tmp_path, MANIFEST)
    status, stdout, _ = jobs(
        "explain", "vacuum-analyze", "--manifest", path, "--next", "2",
        "--after", "2025-01-01T00:00:00Z",
    )  # fmt: skip
    assert status == 0
    assert stdout.splitlines() == [
        "vacuum-analyze: pg_cron",
        "  engine schedule: cron '0 23 * * *' in GMT",
        "  around the slots: catch_up unset: pg_cron runs none of the slots it missed",
        "  reasons:",
        "    - Every condition for pg_cron holds, so the job runs inside the database.",
        "    - The body is SQL (VACUUM) that stays inside the database.",
        "    - pg_cron 1.4 runs it at exactly the declared instants: cron '0 23 * * *' in GMT.",
        "    - SQL jobs run as the jobs role: VACUUM skips, with a warning, every table that role "
        "does not own (PostgreSQL 15 has no MAINTAIN privilege); the tasks.maintenance tasks do "
        "the whole database on the owner's connection.",
        "    - Not Celery: no worker, broker or network hop is needed, and the job runs even "
        "while the application is down.",
        "  next runs (UTC):",
        "    2025-01-01T23:00:00+00:00",
        "    2025-01-02T23:00:00+00:00",
    ]


def test_explain__startup_and_interval(tmp_path: Path) -> None:
    """A start-up job has no clock times; an interval no cron expression matches runs at the
    multiples of its length since the epoch (``every`` is aligned to the clock)."""
    path = write(tmp_path, MANIFEST)
    _, stdout, _ = jobs("explain", "dump", "--manifest", path, "--format", "json")
    assert json.loads(stdout)["next_runs"] == []
    _, stdout, _ = jobs(
        "explain", "ping", "--manifest", path, "--format", "json", "--next", "2",
        "--after", "2025-01-01T00:00:00+00:00",
    )  # fmt: skip
    document = json.loads(stdout)
    assert document["target"] == "celery"
    assert document["next_runs"] == ["2025-01-01T00:05:00+00:00", "2025-01-01T00:12:00+00:00"]


def test_explain__unknown_job(tmp_path: Path) -> None:
    """An unknown name: exit 1 and a suggestion, nothing on stdout."""
    path = write(tmp_path, MANIFEST)
    assert jobs("explain", "vacuum-analyse", "--manifest", path) == (
        1,
        "",
        f"{path}: no job named 'vacuum-analyse' (did you mean 'vacuum-analyze'?)\n",
    )


def test_explain__invalid_arguments(tmp_path: Path) -> None:
    """Out-of-range --next and a naive --after are refused with exit 1."""
    path = write(tmp_path, MANIFEST)
    assert jobs("explain", "dump", "--manifest", path, "--next", "5000")[::2] == (
        1,
        "--next must be between 0 and 1000\n",
    )
    status, _, stderr = jobs("explain", "dump", "--manifest", path, "--after", "2025-01-01")
    assert status == 1
    assert stderr.startswith("--after: '2025-01-01' has no UTC offset")


def test_explain__invalid_manifest(tmp_path: Path) -> None:
    """explain on an invalid manifest reports its errors like validate does."""
    path = write(tmp_path, "version: 1\njobs:\n  a: {sql: SELECT 1}\n")
    assert jobs("explain", "a", "--manifest", path) == (
        1,
        "",
        f"{path}:3: job 'a': trigger: a job needs one trigger: schedule, at or 'on: startup'\n"
        f"{path}: 1 error\n",
    )


def test_cli__unreachable_database(tmp_path: Path) -> None:
    """validate still checks the manifest (with a warning); explain says why it cannot place."""
    path = write(tmp_path, MANIFEST)
    env = service_env(DATABASE_URL="postgresql://someone:pw@%2Fnonexistent%2Fsocket/db")
    argv = [sys.executable, "manage.py", "jobs"]
    validate = subprocess.run(
        [*argv, "validate", "--manifest", path],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert validate.returncode == 0
    assert validate.stdout == f"{path}: OK, 4 jobs (placement not checked)\n"
    assert validate.stderr.startswith("warning: cannot read the database's capabilities: ")
    assert validate.stderr.endswith("; job placement was not checked\n")
    explain = subprocess.run(
        [*argv, "explain", "ping", "--manifest", path],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert explain.returncode == 1
    assert explain.stderr.startswith("cannot explain 'ping': cannot read the database's ")
    assert "Traceback" not in explain.stderr + validate.stderr
