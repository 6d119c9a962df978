"""``jobs plan|apply|list|pause|resume|run`` as the CLI contract says: output, JSON, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.models import ManagedJob
from tests.integration.cli_helpers import jobs
from tests.integration.reconcile_helpers import clear_engines, write_manifest

pytestmark = pytest.mark.django_db

MANIFEST = """
version: 1
jobs:
  nightly-vacuum:
    schedule: "0 3 * * *"
    sql: VACUUM ANALYZE
  hourly-ping:
    schedule: "@hourly"
    task: orchestrator.ping
"""


@pytest.fixture(autouse=True)
def empty_engines() -> None:
    clear_engines()


def test_plan__json_lists_changes_and_check_exits_2_until_applied(tmp_path: Path) -> None:
    """`plan --format json` prints {changes: [{name, action, target, diff}], summary};
    `--check` exits 2 while changes are pending and 0 once applied."""
    path = str(write_manifest(tmp_path, MANIFEST))
    status, out, _ = jobs("plan", "--manifest", path, "--format", "json")
    assert status == 0
    plan = json.loads(out)
    assert {(c["name"], c["action"], c["target"]) for c in plan["changes"]} == {
        ("nightly-vacuum", "create", "pg_cron"),
        ("hourly-ping", "create", "celery"),
    }
    assert plan["summary"]["create"] == 2
    assert jobs("plan", "--manifest", path, "--check")[0] == 2
    status, out, _ = jobs("apply", "--manifest", path, "--yes")
    assert status == 0
    assert "Applied: 2 created" in out
    status, out, _ = jobs("plan", "--manifest", path, "--check")
    assert status == 0
    assert "No changes" in out


def test_apply__without_yes_and_no_terminal_changes_nothing(tmp_path: Path) -> None:
    """With nobody at a terminal to confirm, apply refuses (exit 1) and writes nothing."""
    path = str(write_manifest(tmp_path, MANIFEST))
    status, _, err = jobs("apply", "--manifest", path)
    assert status == 1
    assert "pass --yes" in err
    assert not ManagedJob.objects.exists()


def test_apply__invalid_manifest_prints_located_errors_and_changes_nothing(tmp_path: Path) -> None:
    """A bad field is reported as PATH:LINE: job 'x': field: message; nothing is applied."""
    path = str(write_manifest(tmp_path, MANIFEST.replace("@hourly", "@fortnightly")))
    status, _, err = jobs("apply", "--manifest", path, "--yes")
    assert status == 1
    assert f"{path}:8: job 'hourly-ping': schedule:" in err
    assert not ManagedJob.objects.exists()


def test_list_pause_resume__json_and_state(tmp_path: Path) -> None:
    """list shows engine, schedule, state and next run; pause and resume flip the state in the
    engine and the registry; an unknown name exits 1 with a message naming it."""
    jobs("apply", "--manifest", str(write_manifest(tmp_path, MANIFEST)), "--yes")
    status, out, _ = jobs("list", "--format", "json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["nightly-vacuum"]["engine"] == "pg_cron"
    assert rows["nightly-vacuum"]["state"] == "active"
    assert rows["nightly-vacuum"]["next_run"].endswith("+00:00")
    status, out, _ = jobs("pause", "nightly-vacuum", "--format", "json")
    assert json.loads(out) == {"name": "nightly-vacuum", "engine": "pg_cron", "paused": True}
    rows = {row["name"]: row for row in json.loads(jobs("list", "--format", "json")[1])}
    assert rows["nightly-vacuum"]["state"] == "paused"
    assert rows["nightly-vacuum"]["next_run"] is None
    assert jobs("resume", "nightly-vacuum")[1].strip() == "nightly-vacuum: resumed in pg_cron"
    status, _, err = jobs("pause", "no-such-job")
    assert status == 1
    assert "no managed job is named 'no-such-job'" in err


@pytest.mark.django_db(transaction=True)
def test_run__starts_a_run_on_a_worker(tmp_path: Path, celery_worker, celery_app) -> None:
    """`run NAME` returns a Celery task id whose run completes on the real worker."""
    jobs("apply", "--manifest", str(write_manifest(tmp_path, MANIFEST)), "--yes")
    status, out, _ = jobs("run", "hourly-ping", "--format", "json")
    assert status == 0
    run_id = json.loads(out)["run_id"]
    assert celery_app.AsyncResult(run_id).get(timeout=30)["status"] == "succeeded"
    clear_engines()


def test_validate__timeout_longer_than_the_visibility_timeout_is_refused(tmp_path: Path) -> None:
    """Redis would redeliver a message still running after its visibility timeout, so a
    Celery job whose timeout (or retry countdown) does not fit is a located error."""
    path = str(
        write_manifest(
            tmp_path,
            """
            version: 1
            jobs:
              too-long:
                schedule: "@daily"
                task: orchestrator.ping
                timeout: 6h
              backs-off-too-far:
                schedule: "@daily"
                task: orchestrator.ping
                retries: {max: 20, backoff: 60}
            """,
        )
    )
    status, _, err = jobs("validate", "--manifest", path)
    assert status == 1
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}:7: job 'too-long': timeout: 21600s (timeout + countdown)")
    assert "visibility timeout" in lines[0]
    assert lines[1].startswith(f"{path}:11: job 'backs-off-too-far': retries:")
