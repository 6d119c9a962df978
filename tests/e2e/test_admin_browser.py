"""The admin in a real headless Chromium (Debian's ``chromium``, driven by Playwright): log in,
see both engines' jobs, pause one, run one now and watch its run appear. Each page is saved
as a screenshot under ``tests/e2e/artifacts/`` (git-ignored)."""

from __future__ import annotations

import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest

import orchestrator.engines.celery.history  # noqa: F401 - the live server (this process) records run-nows as queued
from orchestrator import reconcile
from orchestrator.models import JobRun, ManagedJob
from tests.e2e.conftest import shot
from tests.integration.reconcile_helpers import clear_engines, placed_from
from tests.integration.test_history import HistoryWorker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def e2e_jobs(celery_app, settings, tmp_path) -> Iterator[str]:
    """Two managed jobs, one per engine, and a worker with history on the Celery job's queue;
    the manifest the Plan page reads is the one applied."""
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    clear_engines()
    manifest = textwrap.dedent(
        f"""
            version: 1
            jobs:
              e2e-sql:
                schedule: "*/5 * * * *"
                target: pg_cron
                sql: SELECT 1
                description: browser test, pg_cron
              e2e-task:
                schedule: "@hourly"
                target: celery
                queue: {queue}
                sql: SELECT pg_sleep(0.3)
                description: browser test, Celery
            """
    )
    (tmp_path / "jobs.yaml").write_text(manifest)
    settings.ORCHESTRATOR_MANIFEST = str(tmp_path / "jobs.yaml")
    reconcile.apply(placed_from(manifest))
    worker = HistoryWorker(queue)
    try:
        worker.wait_ready(celery_app)
        yield queue
    finally:
        worker.stop()
        clear_engines()
        JobRun.objects.filter(job__in=["e2e-sql", "e2e-task"]).delete()


def test_admin_browser__login_see_pause_and_run_now(
    live_server, browser_page, e2e_jobs, django_user_model
) -> None:
    """An operator's round trip through the real admin in Chromium."""
    page = browser_page
    django_user_model.objects.create_superuser("e2e-admin", password="e2e-pass-1234")
    base = live_server.url

    page.goto(f"{base}/admin/login/")
    shot(page, "01-login")
    page.fill("#id_username", "e2e-admin")
    page.fill("#id_password", "e2e-pass-1234")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    shot(page, "02-index")

    page.goto(f"{base}/admin/orchestrator/managedjob/")
    table = page.locator("#result_list")
    assert table.locator("text=e2e-sql").count() == 1
    assert table.locator("text=e2e-task").count() == 1
    assert table.locator(".orch-badge", has_text="pg_cron").count() >= 1
    assert table.locator(".orch-badge", has_text="celery").count() >= 1
    assert "pg_cron scheduler" in page.content()
    shot(page, "03-jobs")

    page.click("text=e2e-sql")
    page.wait_for_selector(".orch-job")
    page.click("input[value=Pause]")
    page.wait_for_selector("input[value=Resume]")
    assert page.locator(".orch-state").inner_text() == "paused"
    shot(page, "04-job-paused")
    assert ManagedJob.objects.get(name="e2e-sql").paused

    task = ManagedJob.objects.get(name="e2e-task")
    page.goto(f"{base}/admin/orchestrator/managedjob/{task.pk}/change/")
    page.click("input[value='Run now']")
    page.wait_for_selector("text=run started")
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        page.reload()
        if page.locator(".orch-runs .orch-badge", has_text="succeeded").count():
            break
        time.sleep(1)
    assert page.locator(".orch-runs .orch-badge", has_text="succeeded").count() == 1
    assert page.locator("svg.orch-chart rect").count() == 1
    shot(page, "05-job-ran")

    page.goto(f"{base}/admin/orchestrator/jobrun/?job=e2e-task")
    assert page.locator("#result_list", has_text="e2e-task").count() == 1
    shot(page, "06-runs")
    page.goto(f"{base}/admin/orchestrator/managedjob/plan/")
    assert "Nothing to apply: both engines match the manifest." in page.content()
    shot(page, "07-plan")
    page.goto(f"{base}/admin/orchestrator/managedjob/unmanaged/")
    shot(page, "08-unmanaged")
    page.goto(f"{base}/metrics")
    assert 'orchestrator_job_runs_total{engine="celery",job="e2e-task",status="succeeded"}' in (
        page.content()
    )
