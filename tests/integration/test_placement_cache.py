"""The placement cache never hides a change: with a warm cache, ``jobs plan`` still shows an
edited manifest, an engine row edited by hand, and a change in the database's capabilities;
and after an edit, the jobs whose text did not change are kept rather than validated again."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from orchestrator import desired
from orchestrator import manifest as manifest_module
from orchestrator.placement_cache import wait_for_writes
from tests.integration.cli_helpers import jobs
from tests.integration.reconcile_helpers import clear_engines

pytestmark = pytest.mark.django_db

MANIFEST = """\
version: 1
jobs:
  cache-sql:
    schedule: "0 3 * * *"
    sql: SELECT 1
  cache-task:
    schedule: "0 4 * * *"
    task: orchestrator.ping
  cache-probe:
    schedule: "0 5 * * *"
    sql: SELECT perf_cache_probe()
"""


@pytest.fixture
def cache_dir(tmp_path: Path, settings: object) -> Path:
    clear_engines()  # in the test's transaction: start from empty engines, whatever was there
    folder = tmp_path / "cache"
    settings.ORCHESTRATOR_CACHE_DIR = str(folder)
    return folder


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts full loads of the manifest (a cache miss loads it; a hit does not)."""
    calls: list[str] = []
    real = desired.load_manifest_text

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(str(kwargs.get("path")))
        return real(*args, **kwargs)

    monkeypatch.setattr(desired, "load_manifest_text", counting)
    return calls


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def plan(path: Path) -> dict[str, object]:
    status, out, err = jobs("plan", "--manifest", str(path), "--format", "json")
    assert status == 0, err
    return json.loads(out)


def apply(path: Path) -> None:
    status, _, err = jobs("apply", "--manifest", str(path), "--yes")
    assert status == 0, err


def actions(result: dict[str, object]) -> dict[str, str]:
    return {change["name"]: change["action"] for change in result["changes"]}


def execute(sql: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_cache__hit_then_manifest_change_shows(
    tmp_path: Path, cache_dir: Path, loads: list[str]
) -> None:
    """A second plan of the same file is answered from the cache (no load); editing one job's
    SQL is a miss and the plan shows exactly that update."""
    path = write(tmp_path, MANIFEST)
    apply(path)
    assert plan(path)["changes"] == []
    before = len(loads)
    assert plan(path)["changes"] == []
    assert len(loads) == before, "the unchanged manifest was loaded again"
    path.write_text(path.read_text().replace("SELECT 1", "SELECT 2"))
    result = plan(path)
    assert len(loads) == before + 1
    assert actions(result) == {"cache-sql": "update"}
    wait_for_writes()  # entries are written in the background
    assert list(cache_dir.iterdir()), "the cache wrote its entry"


def test_cache__engine_rows_edited_by_hand_show_as_drift(
    tmp_path: Path, cache_dir: Path, loads: list[str]
) -> None:
    """With the cache warm, a pg_cron schedule altered by hand and a periodic task
    edited through the ORM both show as drift, and an apply restores them."""
    path = write(tmp_path, MANIFEST)
    apply(path)
    plan(path)
    warm = len(loads)
    execute(  # the job is the jobs role's: edited through the wrapper, as a DBA would
        "SELECT orchestrator_cron.alter_job(jobid, '9 9 * * *', NULL, NULL, NULL) FROM cron.job "
        "WHERE jobname = 'cache-sql'"
    )
    PeriodicTask.objects.filter(name="cache-task").update(queue="elsewhere")
    result = plan(path)
    assert len(loads) == warm, "drift must be found without reloading the manifest"
    assert actions(result) == {"cache-sql": "drift", "cache-task": "drift"}
    apply(path)
    assert plan(path)["changes"] == []


def test_cache__capabilities_change_shows(
    tmp_path: Path, cache_dir: Path, loads: list[str]
) -> None:
    """A function the SQL calls appearing in pg_catalog moves its job from Celery (cannot be
    checked) to pg_cron, although the manifest's bytes did not change."""
    path = write(tmp_path, MANIFEST)
    apply(path)
    assert plan(path)["changes"] == []
    execute("CREATE FUNCTION perf_cache_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    result = plan(path)
    (change,) = result["changes"]
    assert change["name"] == "cache-probe"
    assert change["action"] == "update"
    assert change["diff"]["target"] == {"from": "celery", "to": "pg_cron"}


def test_cache__untrusted_directory_is_ignored(
    tmp_path: Path, cache_dir: Path, loads: list[str]
) -> None:
    """An entry in a directory others may write is never unpickled: the manifest is loaded."""
    path = write(tmp_path, MANIFEST)
    plan(path)
    cache_dir.chmod(0o777)
    before = len(loads)
    plan(path)
    assert len(loads) == before + 1


def test_cache__no_directory_setting_means_no_cache(
    tmp_path: Path, settings: object, loads: list[str]
) -> None:
    """With ORCHESTRATOR_CACHE_DIR empty the cached path is never taken (each plan loads the
    manifest through desired.load)."""
    settings.ORCHESTRATOR_CACHE_DIR = ""
    path = write(tmp_path, MANIFEST)
    plan(path)
    plan(path)
    assert len(loads) == 0  # the uncached path goes through desired.load, not this function


# --------------------------------------------------------------------------- per-job reuse


@pytest.fixture
def validated(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The manifest's jobs validated one by one (a job kept from the cache is not)."""
    names: list[str] = []
    real = manifest_module._Loader.job

    def counting(self: object, name: str, *args: object) -> object:
        if name.startswith("cache-"):  # the built-in upkeep jobs are always loaded
            names.append(name)
        return real(self, name, *args)

    monkeypatch.setattr(manifest_module._Loader, "job", counting)
    return names


def warm(path: Path, validated: list[str]) -> None:
    """Apply ``path`` and plan it once more, then forget what was validated so far."""
    apply(path)
    assert plan(path)["changes"] == []
    validated.clear()


def test_reuse__one_job_edit_validates_that_job_only(
    tmp_path: Path, cache_dir: Path, validated: list[str]
) -> None:
    """Editing one job's SQL re-validates that job alone, the plan shows exactly its update,
    and once applied the plan is clean (the others kept from the cache)."""
    path = write(tmp_path, MANIFEST)
    warm(path, validated)
    path.write_text(path.read_text().replace("SELECT 1", "SELECT 2"))
    assert actions(plan(path)) == {"cache-sql": "update"}
    assert validated == ["cache-sql"]
    apply(path)
    assert plan(path)["changes"] == []


def test_reuse__rename_and_removal_show(
    tmp_path: Path, cache_dir: Path, validated: list[str]
) -> None:
    """A renamed job is a new job (created, the old name deleted); a removed job is deleted;
    the unchanged job is kept without validation."""
    path = write(tmp_path, MANIFEST)
    warm(path, validated)
    text = path.read_text().replace("cache-task:", "cache-task-2:")
    path.write_text(text[: text.index("  cache-probe:")])
    result = plan(path)
    assert actions(result) == {
        "cache-task-2": "create",
        "cache-task": "delete",
        "cache-probe": "delete",
    }
    assert validated == ["cache-task-2"]


def test_reuse__moved_jobs_keep_their_definition_and_get_their_new_lines(
    tmp_path: Path, cache_dir: Path, validated: list[str]
) -> None:
    """A job added at the top moves the others down: they are kept (unchanged in the plan)
    and the placed spec reports the lines they are at now."""
    path = write(tmp_path, MANIFEST)
    warm(path, validated)
    added = '  cache-new:\n    schedule: "0 6 * * *"\n    task: orchestrator.ping\n'
    path.write_text(path.read_text().replace("jobs:\n", "jobs:\n" + added))
    assert actions(plan(path)) == {"cache-new": "create"}
    assert validated == ["cache-new"]
    placed = desired.place_file(path).get("cache-probe")
    assert (placed.spec.line, placed.spec.line_of("sql")) == (12, 14)
    assert validated == ["cache-new"], "an unchanged file is a hit"


def test_reuse__capability_change_with_an_edit_places_every_job(
    tmp_path: Path, cache_dir: Path, validated: list[str]
) -> None:
    """When the capabilities changed too, no job is kept: every job is validated and placed
    again, and the plan shows both the edit and the move the new function allows."""
    path = write(tmp_path, MANIFEST)
    warm(path, validated)
    path.write_text(path.read_text().replace("SELECT 1", "SELECT 2"))
    execute("CREATE FUNCTION perf_cache_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    result = plan(path)
    assert actions(result) == {"cache-sql": "update", "cache-probe": "update"}
    assert set(validated) == {"cache-probe", "cache-sql", "cache-task"}


def test_reuse__hand_edit_and_defaults_change_show(
    tmp_path: Path, cache_dir: Path, validated: list[str]
) -> None:
    """A periodic task edited by hand shows as drift beside a one-job edit; a change in
    ``defaults`` (inherited by every job) re-validates every job."""
    path = write(tmp_path, MANIFEST)
    warm(path, validated)
    PeriodicTask.objects.filter(name="cache-task").update(queue="elsewhere")
    path.write_text(path.read_text().replace("SELECT 1", "SELECT 2"))
    assert actions(plan(path)) == {"cache-sql": "update", "cache-task": "drift"}
    assert validated == ["cache-sql"]
    validated.clear()
    path.write_text(path.read_text().replace("jobs:\n", "defaults:\n  queue: other\njobs:\n"))
    result = actions(plan(path))
    assert result["cache-task"] == "update"
    assert sorted(validated) == ["cache-probe", "cache-sql", "cache-task"]
