"""The Workers page in Chromium against a real worker of its own: counts, a running job shown
by its name and linked to its job, scale up and drain each through a confirmation, and no
controls for a user without their permissions."""

from __future__ import annotations

import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator import operations, reconcile
from orchestrator.engines.celery.fleet import Fleet
from orchestrator.models import JobRun
from tests.e2e.conftest import shot
from tests.faults.processes import Worker
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OPERATOR = (
    "celery_engine.view_worker",
    "celery_engine.drain_worker",
    "celery_engine.scale_worker",
)


@pytest.fixture
def slow_job(celery_app: Any) -> Iterator[Worker]:
    """A worker on a queue of its own and a managed job on that queue that sleeps 4 s."""
    queue = f"e2e-workers-{uuid.uuid4().hex[:6]}"
    clear_engines()
    reconcile.apply(
        placed_from(
            textwrap.dedent(
                f"""
                version: 1
                jobs:
                  e2e-slow:
                    schedule: "@yearly"
                    target: celery
                    queue: {queue}
                    sql: SELECT pg_sleep(4)
                """
            )
        )
    )
    worker = Worker(queues=queue, concurrency=2)
    try:
        worker.wait_ready(celery_app)
        yield worker
    finally:
        worker.stop()
        clear_engines()
        JobRun.objects.filter(job="e2e-slow").delete()


def _card(page, worker: Worker):
    return page.locator(f".orch-worker[data-worker='{worker.hostname}']")


def test_workers_page__running_job_by_name_scale_and_drain_after_confirmation(
    browser_page, narrow_page, admin_login, slow_job, celery_app
) -> None:
    """An operator sees the job running on the worker under its own name (linked to its job),
    grows the pool and drains the worker, each only after a confirmation page; a viewer sees
    no control and is refused the confirmation."""
    worker = slow_job
    page = browser_page
    base = admin_login(page, username="fleet-op", superuser=False, permissions=OPERATOR)
    operations.run_now("e2e-slow")
    url = f"{base}/admin/celery_engine/worker/"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page.goto(url)
        if _card(page, worker).locator(".orch-tasks a", has_text="e2e-slow").count():
            break
        time.sleep(0.3)
    card = _card(page, worker)
    assert card.locator(".orch-tasks a", has_text="e2e-slow").count() == 1
    assert card.locator(".orch-processed strong").inner_text() == "1"
    assert card.locator(".orch-failed strong").inner_text() == "0"
    assert page.locator("#orch-refresh").count() == 1
    shot(page, "workers-1440")
    narrow_page.context.add_cookies(page.context.cookies())
    narrow_page.goto(url)
    shot(narrow_page, "workers-390")
    assert narrow_page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )

    card.locator("a", has_text="Scale up to 3").click()
    assert "from 2 to 3 processes" in page.locator("#orch-what").inner_text()
    assert len(Fleet(celery_app).workers(worker.hostname)[0].processes) == 2  # not yet
    page.click("input[value='Scale to 3']")
    page.wait_for_selector("text=runs 3 processes (was 2)")
    assert len(Fleet(celery_app).workers(worker.hostname)[0].processes) == 3

    _card(page, worker).locator("a", has_text="Drain").click()
    assert "stops taking tasks" in page.locator("#orch-what").inner_text()
    page.click("input[value='Drain']")
    page.wait_for_selector(".orch-drained")
    assert Fleet(celery_app).workers(worker.hostname)[0].queues == []
    _card(page, worker).locator("a", has_text="Resume").click()
    page.click("input[value='Resume']")
    page.wait_for_selector("text=takes tasks from")
    assert Fleet(celery_app).workers(worker.hostname)[0].queues != []

    viewer = narrow_page.context.browser.new_page()
    admin_login(viewer, username="fleet-viewer", superuser=False, permissions=OPERATOR[:1])
    viewer.goto(url)
    assert _card(viewer, worker).locator(".orch-actions").count() == 0
    refused = viewer.request.get(f"{url}confirm/?action=scale&worker={worker.hostname}&size=1")
    assert refused.status == 403
