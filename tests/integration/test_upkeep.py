"""The orchestrator's upkeep jobs: built in, configured in settings, installed like any job."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings
from django_celery_beat.models import PeriodicTask

from orchestrator import desired, reconcile
from orchestrator.errors import ManifestInvalid
from tests.integration.reconcile_helpers import clear_engines, placed_from

ROOT = Path(__file__).resolve().parent.parent.parent
MANIFEST = """
version: 1
jobs:
  vacuum-analyze:
    schedule: "0 23 * * *"
    sql: VACUUM ANALYZE
"""
UPKEEP = {
    "orchestrator.import-cron-runs",
    "orchestrator.prune-cron-history",
    "orchestrator.prune-run-history",
    "orchestrator.lost-run-sweep",
    "orchestrator.missed-run-check",
}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_engines() -> None:
    clear_engines()


def cron_commands() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT jobname, command FROM cron.job")
        return dict(cursor.fetchall())


@override_settings(ORCHESTRATOR_UPKEEP=True)
def test_upkeep__installed_beside_the_manifest_and_plans_clean() -> None:
    """With upkeep on, an apply installs the built-in jobs in the engines the classifier picks
    (the SQL ones in pg_cron, the sweeper on Celery) and the next plan is clean."""
    outcome = reconcile.apply(placed_from(MANIFEST))
    assert outcome.summary()["create"] == 1 + len(UPKEEP)
    commands = cron_commands()
    assert commands["orchestrator.import-cron-runs"] == "SELECT orchestrator_import_cron_runs()"
    assert commands["orchestrator.prune-run-history"] == "SELECT orchestrator_prune_run_history(30)"
    assert PeriodicTask.objects.filter(name="orchestrator.lost-run-sweep").exists()
    assert PeriodicTask.objects.filter(name="orchestrator.missed-run-check").exists()
    again = reconcile.plan(placed_from(MANIFEST))
    assert not again.pending(prune=True), again.as_json()


@override_settings(ORCHESTRATOR_UPKEEP=True)
def test_upkeep__retention_setting_change_shows_in_the_plan() -> None:
    """A changed retention setting is an update of that upkeep job, applied like any change."""
    reconcile.apply(placed_from(MANIFEST))
    with override_settings(ORCHESTRATOR_RUN_HISTORY_DAYS=7):
        plan = reconcile.plan(placed_from(MANIFEST))
        assert [(c.name, c.action) for c in plan.of("create", "update", "drift", "delete")] == [
            ("orchestrator.prune-run-history", "update")
        ]
        reconcile.apply(placed_from(MANIFEST))
        assert "history(7)" in cron_commands()["orchestrator.prune-run-history"]


@override_settings(ORCHESTRATOR_UPKEEP=False)
def test_upkeep__off_installs_none_and_prune_removes_them() -> None:
    """Upkeep off: no built-in job is placed, and ``--prune`` removes ones installed before."""
    with override_settings(ORCHESTRATOR_UPKEEP=True):
        reconcile.apply(placed_from(MANIFEST))
    placed = placed_from(MANIFEST)
    assert [job.spec.name for job in placed] == ["vacuum-analyze"]
    plan = reconcile.plan(placed)
    assert {c.name for c in plan.of("delete")} == UPKEEP
    reconcile.apply(placed, prune=True)
    assert set(cron_commands()) == {"vacuum-analyze"}


@override_settings(ORCHESTRATOR_UPKEEP=True)
def test_upkeep__missed_run_check_names_the_registered_task() -> None:
    """The missed-run check is an upkeep job validated against the registered tasks: a Celery
    ``task`` body naming ``orchestrator.check_missed_runs``, every 5 minutes."""
    manifest = desired.load_text(MANIFEST, path="jobs.yaml")
    [check] = [job for job in manifest.jobs if job.name == "orchestrator.missed-run-check"]
    assert check.body.task == "orchestrator.check_missed_runs"
    assert "orchestrator.check_missed_runs" in desired.task_names()


def test_upkeep__reserved_prefix_is_a_located_error() -> None:
    """A manifest job may not take a built-in job's name space."""
    text = "version: 1\njobs:\n  orchestrator.mine:\n    schedule: '@daily'\n    sql: SELECT 1\n"
    with pytest.raises(ManifestInvalid) as caught:
        desired.load_text(text, path="jobs.yaml")
    assert [str(error) for error in caught.value.errors] == [
        "jobs.yaml:3: job 'orchestrator.mine': name: names starting with 'orchestrator.' are "
        "reserved for the orchestrator's built-in jobs"
    ]


def test_upkeep__shipped_manifest_holds_only_the_catalog() -> None:
    """The shipped jobs.yaml names no table of the orchestrator or pg_cron: upkeep is built in."""
    text = (ROOT / "jobs.yaml").read_text()
    for internal in (
        "orchestrator_jobrun",
        "cron.job_run_details",
        "orchestrator_import_cron_runs",
    ):
        assert internal not in text
