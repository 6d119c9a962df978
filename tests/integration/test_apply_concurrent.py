"""Concurrent applies of different manifests: the plan is made under the apply lock, so the
apply that commits last reports what is live, and a plan confirmed before the lock is never
carried out against a state it was not made for."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from orchestrator import reconcile
from tests.conftest import ROOT, service_env
from tests.integration.reconcile_helpers import clear_engines, placed_from, snapshot

pytestmark = pytest.mark.django_db(transaction=True)

JOBS_PER_MANIFEST = 300


def manifest_text(prefix: str, count: int = JOBS_PER_MANIFEST) -> str:
    """``count`` jobs named ``prefix-NNNN``, half pg_cron SQL, half Celery tasks."""
    lines = ["version: 1", "jobs:"]
    for index in range(count):
        lines += [f"  {prefix}-{index:04d}:", '    schedule: "*/5 * * * *"']
        lines.append("    sql: SELECT 1" if index % 2 else "    task: orchestrator.ping")
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def empty_engines() -> None:
    clear_engines()
    yield
    clear_engines()


def live_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT jobname FROM cron.job")
        names = {name for (name,) in cursor.fetchall()}
    return names | set(PeriodicTask.objects.values_list("name", flat=True))


def manage(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=service_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("round_", range(3))
def test_apply__two_racing_cli_applies_leave_the_last_ones_manifest_live(
    tmp_path: Path, round_: int
) -> None:
    """Two `jobs apply --yes --prune` processes of disjoint manifests start together. Both
    succeed; the one that took the lock second re-planned against the first one's result, so
    it reports deleting all of the first one's jobs and it alone reports that. Afterwards the
    live jobs are exactly its manifest's, its `plan --check` is clean and the other's is not."""
    paths = {}
    for prefix in ("alpha", "beta"):
        paths[prefix] = tmp_path / f"{prefix}.yaml"
        paths[prefix].write_text(manifest_text(prefix))
    processes = {
        prefix: manage("jobs", "apply", "--yes", "--prune", "--manifest", str(path))
        for prefix, path in paths.items()
    }
    deleted = {}
    for prefix, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        match = re.search(r"Applied: (\d+) created, .* (\d+) deleted", out)
        assert match, out
        assert int(match.group(1)) == JOBS_PER_MANIFEST
        deleted[prefix] = int(match.group(2))
    assert sorted(deleted.values()) == [0, JOBS_PER_MANIFEST], deleted
    winner = max(deleted, key=deleted.__getitem__)
    loser = min(deleted, key=deleted.__getitem__)
    assert live_names() == {f"{winner}-{index:04d}" for index in range(JOBS_PER_MANIFEST)}
    check = {
        prefix: manage("jobs", "plan", "--check", "--manifest", str(path))
        for prefix, path in paths.items()
    }
    for process in check.values():
        process.communicate(timeout=120)
    assert (check[winner].returncode, check[loser].returncode) == (0, 2)


def test_apply__a_plan_confirmed_before_another_apply_is_refused() -> None:
    """A plan shown for manifest A (nothing live yet), then manifest B applied by someone
    else: applying A against the plan that was confirmed raises PlanChanged and changes
    nothing; applying A with a fresh look under the lock re-plans and succeeds."""
    alpha = placed_from(manifest_text("alpha", 4))
    beta = placed_from(manifest_text("beta", 4))
    shown = reconcile.plan(alpha)
    reconcile.apply(beta, prune=True)
    before = snapshot()
    with pytest.raises(reconcile.PlanChanged, match="changed since the plan was shown"):
        reconcile.apply(alpha, prune=True, expected=reconcile.fingerprint(shown))
    assert snapshot() == before
    outcome = reconcile.apply(
        alpha, prune=True, expected=reconcile.fingerprint(reconcile.plan(alpha))
    )
    assert outcome.summary()["delete"] == 4
    assert not reconcile.plan(alpha).pending()


def test_apply__admin_apply_of_a_stale_plan_changes_nothing(tmp_path: Path, settings) -> None:
    """The admin's Apply posts the fingerprint of the plan the page showed; when the engines
    changed since (another apply), nothing is applied and the page says why."""
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(textwrap.dedent(manifest_text("alpha", 4)))
    settings.ORCHESTRATOR_MANIFEST = str(manifest)
    client = Client()
    client.force_login(User.objects.create_superuser("apply-admin", password="x"))
    page = client.get(reverse("admin:orchestrator_managedjob_plan"))
    shown = page.context["fingerprint"]
    reconcile.apply(placed_from(manifest_text("beta", 4)), prune=True)
    before = snapshot()
    response = client.post(
        reverse("admin:orchestrator_managedjob_apply"), {"fingerprint": shown}, follow=True
    )
    assert any("Nothing was applied" in str(message) for message in response.context["messages"])
    assert snapshot() == before
    fresh = client.get(reverse("admin:orchestrator_managedjob_plan")).context["fingerprint"]
    client.post(reverse("admin:orchestrator_managedjob_apply"), {"fingerprint": fresh})
    assert live_names() >= {f"alpha-{index:04d}" for index in range(4)}
