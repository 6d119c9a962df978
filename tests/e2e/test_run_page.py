"""A failed run investigated in a real Chromium: find it on the Runs list by its error, open
its page (both attempts, their tracebacks and kwargs), go to its job and back to the run, run
it again; a staff user without the run permission sees no "Run again". Screenshots at 1440 and
390 px are saved under ``tests/e2e/artifacts/``."""

from __future__ import annotations

import re
import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest

import orchestrator.engines.celery.history  # noqa: F401 - the live server (this process) records run-agains as queued
from orchestrator import operations, reconcile
from orchestrator.models import JobRun
from tests.e2e.conftest import shot
from tests.integration.reconcile_helpers import clear_engines, placed_from
from tests.integration.test_history import HistoryWorker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

JOB = "e2e-broken-reindex"
RUN_PAGE = re.compile(r"/admin/orchestrator/jobrun/(\d+)/change/$")


@pytest.fixture
def failed_run(celery_app, settings, tmp_path) -> Iterator[JobRun]:
    """A Celery job whose task raises, retried once, run to its end on a real worker: the
    returned row is its final (failed) attempt."""
    queue = f"e2e-run-{uuid.uuid4().hex[:8]}"
    clear_engines()
    manifest = textwrap.dedent(
        f"""
            version: 1
            jobs:
              {JOB}:
                schedule: "@daily"
                target: celery
                queue: {queue}
                task: tasks.maintenance.reindex_schema
                kwargs: {{schema: no_such_reports}}
                retries: {{max: 1, backoff: 0}}
                description: browser test, a task that fails
            """
    )
    (tmp_path / "jobs.yaml").write_text(manifest)
    settings.ORCHESTRATOR_MANIFEST = str(tmp_path / "jobs.yaml")
    reconcile.apply(placed_from(manifest))
    worker = HistoryWorker(queue)
    try:
        worker.wait_ready(celery_app)
        task_id = operations.run_now(JOB)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            final = JobRun.objects.filter(engine_run_id=task_id, status="failed_final").first()
            if final is not None:
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the failing run was not recorded as failed")
        yield final
    finally:
        worker.stop()
        clear_engines()
        JobRun.objects.filter(job=JOB).delete()


def test_run_page__find_open_follow_links_and_run_again(
    browser_page, narrow_page, admin_login, failed_run
) -> None:
    """Runs list (search by error) -> run page -> job page -> run page -> Run again, at 1440
    px with the error column on screen; at 390 px a viewer has no Run again button."""
    page = browser_page
    base = admin_login(page)

    page.goto(f"{base}/admin/orchestrator/jobrun/?q=no_such_reports")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2  # two attempts of the one run, found by their error text
    error = rows.first.locator("td.field-error_col")
    assert "does not exist" in error.inner_text()
    shot(page, "run-01-runs-1440")
    # the error column is on screen at 1440 px: the list does not scroll sideways
    results = page.locator("#changelist .results")
    assert results.evaluate("e => e.scrollWidth <= e.clientWidth"), "the runs list scrolls"
    box, frame = error.bounding_box(), results.bounding_box()
    assert box is not None
    assert frame is not None
    assert box["x"] + box["width"] <= frame["x"] + frame["width"] + 1

    rows.first.locator("a.orch-run-link").click()
    page.wait_for_url(RUN_PAGE)
    assert page.locator("section.orch-attempt").count() == 2
    assert page.locator("pre.orch-traceback").count() == 2
    assert "in reindex_schema" in page.locator("pre.orch-traceback").last.inner_text()
    assert '"schema": "no_such_reports"' in page.locator("pre.orch-kwargs").first.inner_text()
    shot(page, "run-02-run-1440")

    page.locator(".orch-links a.orch-job-link").click()
    page.wait_for_selector(".orch-job")
    assert JOB in page.locator("h2").first.inner_text()
    page.locator(".orch-runs a.orch-run-link").first.click()
    page.wait_for_url(RUN_PAGE)
    assert page.locator("section.orch-attempt").count() == 2

    page.click("input[value='Run again']")
    page.wait_for_selector("text=run started")
    new_id = int(RUN_PAGE.search(page.url).group(1))
    new = JobRun.objects.get(pk=new_id)
    assert new.job == JOB
    assert new.engine_run_id != failed_run.engine_run_id
    shot(page, "run-03-run-again-1440")

    viewer = narrow_page
    base = admin_login(
        viewer,
        username="e2e-viewer",
        superuser=False,
        permissions=("orchestrator.view_jobrun", "orchestrator.view_managedjob"),
    )
    viewer.goto(f"{base}/admin/orchestrator/jobrun/{failed_run.pk}/change/")
    assert viewer.locator("section.orch-attempt").count() == 2
    assert viewer.locator("input[value='Run again']").count() == 0
    width = viewer.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the run page is {width} px wide at 390 px"
    shot(viewer, "run-04-run-viewer-390")
    viewer.goto(f"{base}/admin/orchestrator/jobrun/?q={JOB}")
    shot(viewer, "run-05-runs-390")
