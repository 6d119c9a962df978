"""The job page in a real Chromium: a task job's Run now takes keyword arguments for this run
(refused, with the reason, when the task does not take them); the page shows the job's overlap
and notify lines and a run that failed for good with its own badge, at 1440 and 390 px."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator

import pytest
from django.utils import timezone

import orchestrator.engines.celery.history  # noqa: F401 - the live server records run-nows
from orchestrator import reconcile
from orchestrator.models import JobRun, ManagedJob
from tests.e2e.conftest import shot
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

JOB = "e2e-reindex"


@pytest.fixture
def task_job(celery_app) -> Iterator[int]:
    """A task job on a queue no worker consumes (its runs stay queued), with one run that
    failed for good."""
    queue = f"e2e-kw-{uuid.uuid4().hex[:8]}"
    clear_engines()
    reconcile.apply(
        placed_from(
            textwrap.dedent(
                f"""
                version: 1
                jobs:
                  {JOB}:
                    schedule: "@daily"
                    queue: {queue}
                    task: tasks.maintenance.reindex_schema
                    kwargs: {{schema: public}}
                    overlap: buffer_one
                    notify: {{email: [ops@example.com], on: [failed_final, recovered]}}
                """
            )
        )
    )
    now = timezone.now()
    JobRun.objects.create(
        job=JOB, engine="celery", engine_run_id="e2e-final", status="failed_final",
        started=now, finished=now, message="InvalidSchemaName: schema \"x\" does not exist",
    )  # fmt: skip
    try:
        yield ManagedJob.objects.get(name=JOB).pk
    finally:
        celery_app.connection_for_write().default_channel.queue_purge(queue)
        clear_engines()
        JobRun.objects.filter(job=JOB).delete()


def test_job_page__run_now_with_kwargs_overlap_notify_and_failed_for_good(
    browser_page, narrow_page, admin_login, task_job
) -> None:
    """Run now with {"schema": "reports"} starts a manual run; {"nope": 1} is refused with the
    arguments the task takes and sends nothing; the page fits 390 px."""
    page = browser_page
    base = admin_login(page)
    page.goto(f"{base}/admin/orchestrator/managedjob/{task_job}/change/")
    assert page.locator("td.orch-overlap").inner_text() == "buffer_one"
    assert "e-mail ops@example.com" in page.locator("td.orch-notify").inner_text()
    assert page.locator(".orch-runs .orch-badge").first.inner_text() == "failed for good"

    page.fill("input.orch-run-kwargs", '{"nope": 1}')
    page.click("input[value='Run now']")
    page.wait_for_selector("text=takes no argument 'nope' (it takes: schema)")
    assert not JobRun.objects.filter(job=JOB, manual=True).exists()

    page.fill("input.orch-run-kwargs", '{"schema": "reports"}')
    page.click("input[value='Run now']")
    page.wait_for_selector("text=run started with its keyword arguments")
    assert JobRun.objects.filter(job=JOB, manual=True, status="queued").count() == 1
    shot(page, "job-kwargs-01-1440")

    viewer = narrow_page
    base = admin_login(viewer, username="e2e-narrow")
    viewer.goto(f"{base}/admin/orchestrator/managedjob/{task_job}/change/")
    shot(viewer, "job-kwargs-02-390")
    # the run-now row itself fits (the rest of the page is restyled elsewhere)
    form = viewer.locator(".orch-controls").bounding_box()
    assert form is not None
    assert form["x"] + form["width"] <= 390 + 1
