"""The Jobs list and a job's page in Chromium with the shipped catalog applied (every job of
``jobs.yaml`` plus the built-in upkeep), at 1440 px and at 390 px: no sideways scrolling,
compact rows, names on one line, descriptions shown, the time zone stated once, and the next
few run times on the job page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from orchestrator import desired, reconcile
from orchestrator.models import JobRun, ManagedJob
from tests.conftest import ROOT
from tests.e2e.conftest import ARTIFACTS, shot
from tests.integration.reconcile_helpers import clear_engines

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def catalog(settings) -> Iterator[int]:
    """The shipped manifest applied; yields how many jobs the registry holds."""
    clear_engines()
    settings.ORCHESTRATOR_MANIFEST = str(ROOT / "jobs.yaml")
    reconcile.apply(desired.place(desired.load(ROOT / "jobs.yaml")))
    now = timezone.now()
    for index, (name, engine) in enumerate(ManagedJob.objects.values_list("name", "engine")):
        # a last run for every job, so the widest form of that column is on the page
        JobRun.objects.create(
            job=name, engine=engine, engine_run_id=f"e2e-{index}", status="failed",
            started=now - timedelta(minutes=5), finished=now,
            duration=timedelta(minutes=4, seconds=59), message="boom",
        )  # fmt: skip
    for day in range(1, 8):  # a week of nightly runs on the job page the test opens
        JobRun.objects.create(
            job="vacuum-analyze", engine="celery", engine_run_id=f"e2e-night-{day}",
            status="succeeded", started=now - timedelta(days=day),
            finished=now - timedelta(days=day) + timedelta(seconds=40 + 7 * day),
            duration=timedelta(seconds=40 + 7 * day), worker="celery@web-1", pid=4100 + day,
        )  # fmt: skip
    try:
        yield ManagedJob.objects.count()
    finally:
        clear_engines()
        JobRun.objects.filter(engine_run_id__startswith="e2e-").delete()


def _job_list(page, base: str, name: str) -> None:
    page.goto(f"{base}/admin/orchestrator/managedjob/")
    page.wait_for_selector("#result_list")
    shot(page, name)


def test_jobs_pages__read_well_at_1440_and_390_px(
    browser_page, narrow_page, admin_login, catalog
) -> None:
    """The list of every catalog job fits the screen's width at both sizes, one row per job
    is compact (no name wraps, the whole list well under 3,000 px), headers are not clipped,
    the time zone is said once above the table, and a job's page lists its next runs."""
    assert catalog >= 30
    base = admin_login(browser_page)
    page = browser_page
    _job_list(page, base, "jobs-1440")
    page.screenshot(path=str(ARTIFACTS / "readme-jobs.png"))
    assert page.evaluate(OVERFLOW) <= 0
    results = page.locator("#changelist .results")
    assert results.evaluate("e => e.scrollWidth <= e.clientWidth"), "the table scrolls at 1440 px"
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == catalog
    tallest_row = max(box["height"] for box in (rows.nth(i).bounding_box() for i in range(catalog)))
    assert tallest_row <= 48, f"a row is {tallest_row} px tall"
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 45 * catalog + 600, f"{height} px for {catalog} jobs"
    names = page.locator("#result_list tbody .orch-name")
    line = names.first.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 20")
    tallest = max(box["height"] for box in (names.nth(i).bounding_box() for i in range(catalog)))
    assert tallest < 2 * line, "a job's name wraps"
    for header in page.locator("#result_list thead th").all():
        assert header.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), header.inner_text()
    assert page.locator(".orch-zone-note").count() == 1
    assert page.locator("#result_list .orch-description").count() >= catalog // 2
    # the site's zone is named once, above the table, not on each row
    zone = str(django_settings.TIME_ZONE)
    assert f"Times are in {zone}" in page.locator(".orch-zone-note").inner_text()
    assert f" {zone}" not in page.locator("#result_list tbody").inner_text()

    narrow = narrow_page
    narrow.context.add_cookies(page.context.cookies())
    _job_list(narrow, base, "jobs-390")
    assert narrow.evaluate(OVERFLOW) <= 0

    job = ManagedJob.objects.get(name="vacuum-analyze")
    for view, label in ((page, "1440"), (narrow, "390")):
        view.goto(f"{base}/admin/orchestrator/managedjob/{job.pk}/change/")
        view.wait_for_selector(".orch-job")
        shot(view, f"job-{label}")
        if label == "1440":  # the README's picture: what a screen shows, not the whole page
            view.screenshot(path=str(ARTIFACTS / "readme-job.png"))
        assert view.evaluate(OVERFLOW) <= 0, f"the job page scrolls sideways at {label} px"
        assert view.locator(".orch-upcoming li").count() == 5
