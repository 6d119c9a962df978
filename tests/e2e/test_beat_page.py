"""django-celery-beat's Periodic tasks page in Chromium: a manifest job's row is marked as
managed, links to its job and opens read-only; a hand-made row stays editable; the list
filters by who manages a row, by job name and by the hand-made rows' task."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from orchestrator import reconcile
from orchestrator.models import ManagedJob
from tests.e2e.conftest import shot
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MANIFEST = """
version: 1
jobs:
  beat-managed:
    schedule: "@hourly"
    target: celery
    sql: SELECT 1
  beat-other:
    schedule: "@daily"
    target: celery
    sql: SELECT 2
"""


@pytest.fixture
def beat_rows() -> Iterator[PeriodicTask]:
    """Two manifest jobs in django-celery-beat and one periodic task made by hand."""
    clear_engines()
    reconcile.apply(placed_from(MANIFEST))
    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    hand = PeriodicTask.objects.create(
        name="hand-made-cleanup", task="tasks.cache.clear_caches", interval=every
    )
    try:
        yield hand
    finally:
        clear_engines()
        every.delete()


def test_beat_page__managed_rows_marked_linked_read_only_and_filterable(
    browser_page, admin_login, beat_rows
) -> None:
    """The managed row says so and links to its job's page; its form has no Save button and
    says why; the hand-made row's form has one; the filters narrow the list as named."""
    page = browser_page
    base = admin_login(page)
    url = f"{base}/admin/django_celery_beat/periodictask/"
    page.goto(url)
    row = page.locator("#result_list tr", has_text="beat-managed")
    assert row.locator(".orch-managed", has_text="read-only").count() == 1
    job = ManagedJob.objects.get(name="beat-managed")
    link = row.locator("a", has_text="job page")
    assert link.get_attribute("href") == f"/admin/orchestrator/managedjob/{job.pk}/change/"
    hand_row = page.locator("#result_list tr", has_text="hand-made-cleanup")
    assert hand_row.locator(".orch-managed").count() == 0
    shot(page, "beat-list")

    page.goto(f"{url}?managed=manifest")
    assert page.locator("#result_list tbody tr").count() == 2
    page.goto(f"{url}?managed=hand")
    assert page.locator("#result_list tbody tr").count() == 1
    page.goto(url)
    page.fill("input[name=job]", "other")
    page.press("input[name=job]", "Enter")
    page.wait_for_url("**job=other**")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "beat-other" in page.locator("#result_list tbody tr").inner_text()
    filters = page.locator("#changelist-filter").inner_text()
    assert "tasks.cache.clear_caches" in filters
    assert "orchestrator.run_job" not in filters

    row_id = PeriodicTask.objects.get(name="beat-managed").pk
    page.goto(f"{url}{row_id}/change/")
    assert page.locator("text=managed by the orchestrator and is read-only").count() == 1
    assert page.locator("input[name=_save]").count() == 0
    shot(page, "beat-managed-row")
    page.goto(f"{url}{beat_rows.pk}/change/")
    assert page.locator("input[name=_save]").count() == 1
