"""Applies that race or die: they serialize on the apply lock, and a killed apply leaves
nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection, connections
from django_celery_beat.models import PeriodicTask

from orchestrator import reconcile
from orchestrator.models import ManagedJob
from tests.conftest import ROOT, service_env
from tests.integration.reconcile_helpers import clear_engines, placed_from, snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def manifest_text(count: int) -> str:
    lines = ["version: 1", "jobs:"]
    for index in range(count):
        lines += [f"  job-{index:05d}:", '    schedule: "*/5 * * * *"']
        lines.append("    sql: SELECT 1" if index % 2 else "    task: orchestrator.ping")
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def empty_engines() -> None:
    clear_engines()
    yield
    clear_engines()


def test_apply__100_racing_applies_converge_to_one_copy_of_each_job() -> None:
    """100 applies of the same manifest from 25 threads (own connections each): every job
    exists exactly once in its engine and the registry, and 99 applies found nothing to do."""
    placed = placed_from(manifest_text(40))

    def one_apply(_: int) -> int:
        try:
            return reconcile.apply(placed).summary()["create"]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=25) as pool:
        created = list(pool.map(one_apply, range(100)))
    assert sorted(created, reverse=True)[:2] == [40, 0]
    assert sum(created) == 40
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT jobname) FROM cron.job")
        assert cursor.fetchone() == (20, 20)
    assert PeriodicTask.objects.filter(name__startswith="job-").count() == 20
    assert ManagedJob.objects.count() == 40
    assert not reconcile.plan(placed).pending()


def test_apply__killed_mid_apply_leaves_the_engines_as_they_were(tmp_path: Path) -> None:
    """SIGKILL an apply of 5,000 jobs after its first progress line: the transaction dies
    with it, and pg_cron's, beat's and the registry's rows are exactly what they were."""
    reconcile.apply(placed_from(manifest_text(4)))
    before = snapshot()
    manifest = tmp_path / "big.yaml"
    manifest.write_text(manifest_text(5000))
    process = subprocess.Popen(
        [sys.executable, "manage.py", "jobs", "apply", "--manifest", str(manifest), "--yes"],
        cwd=ROOT,
        env=service_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "creating in" in line or not line:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert "creating in" in line  # it was killed half-way, not before or after
    time.sleep(0.5)  # the server notices the dead client and aborts its transaction
    assert snapshot() == before
