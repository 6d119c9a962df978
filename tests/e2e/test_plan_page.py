"""The Plan and apply page in Chromium: found from the admin index, a coloured per-field diff,
nothing applied before the confirmation's button, a plan that changed after the confirmation
refused, and pruning offered only to a user holding its permission."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import desired, reconcile
from orchestrator.models import ManagedJob
from tests.e2e.conftest import shot
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

APPLIED = """
version: 1
jobs:
  plan-keep:
    schedule: "0 3 * * *"
    target: pg_cron
    sql: SELECT 1
    description: stays as it is
  plan-edit:
    schedule: "*/10 * * * *"
    target: pg_cron
    sql: SELECT 2
  plan-gone:
    schedule: "@hourly"
    target: celery
    sql: SELECT 3
"""
EDITED = """
version: 1
jobs:
  plan-keep:
    schedule: "0 3 * * *"
    target: pg_cron
    sql: SELECT 1
    description: stays as it is
  plan-edit:
    schedule: "*/15 * * * *"
    target: pg_cron
    sql: SELECT 2
    description: now every quarter hour
  plan-new:
    schedule: "@daily"
    target: celery
    task: tasks.cache.clear_caches
    kwargs: {a: 1}
"""
APPLIER = (
    "orchestrator.view_managedjob",
    "orchestrator.apply_manifest",
)


@pytest.fixture
def edited_manifest(tmp_path: Path, settings) -> Iterator[Path]:
    """APPLIED is in the engines; the manifest on disk is EDITED (one edit, one new job, one
    job gone)."""
    clear_engines()
    reconcile.apply(placed_from(APPLIED))
    path = tmp_path / "jobs.yaml"
    path.write_text(textwrap.dedent(EDITED))
    settings.ORCHESTRATOR_MANIFEST = str(path)
    try:
        yield path
    finally:
        clear_engines()


def _pending(path: Path) -> bool:
    return reconcile.plan(desired.place(desired.load(path))).pending(prune=False)


def test_plan_page__applies_only_what_was_confirmed_and_prune_needs_its_permission(
    browser_page, narrow_page, admin_login, edited_manifest
) -> None:
    """An applier without the prune permission: the index leads to the page, the diff is per
    field and coloured, Review shows the confirmation and changes nothing, Apply applies
    and the job gone from the manifest stays (no prune offered)."""
    page = browser_page
    base = admin_login(page, username="applier", superuser=False, permissions=APPLIER)
    page.click("text=Plan and apply")
    page.wait_for_selector(".orch-plan")
    assert page.locator(".orch-card").count() == 3
    edit = page.locator(".orch-card[data-job=plan-edit]")
    assert edit.locator("tr.orch-changed th", has_text="trigger.expr").count() == 1
    assert edit.locator("tr.orch-added th", has_text="description").count() == 1
    new = page.locator(".orch-card[data-job=plan-new]")
    assert new.locator("tr.orch-added th", has_text="kwargs.a").count() == 1
    colour = edit.locator("tr.orch-changed td.orch-after").first.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")
    assert "No changes" not in page.content()
    assert page.locator("#orch-prune").count() == 0
    button = page.locator("input[value='Review and apply…']")
    assert button.is_enabled()
    shot(page, "plan-wide")
    narrow_page.context.add_cookies(page.context.cookies())
    narrow_page.goto(page.url)
    shot(narrow_page, "plan-390")
    assert narrow_page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )

    button.click()
    page.wait_for_selector("#orch-confirm")
    consequences = page.locator(".orch-consequences").inner_text()
    assert "1 job created: plan-new" in consequences
    assert "1 job updated: plan-edit" in consequences
    assert "left running (not pruned): plan-gone" in consequences
    assert _pending(edited_manifest), "the confirmation page applied something"
    shot(page, "plan-confirm")

    page.click("input[value='Apply 2 changes']")
    page.wait_for_selector("text=Applied: 1 job created, 1 job updated.")
    assert not _pending(edited_manifest)
    assert ManagedJob.objects.filter(name="plan-gone").exists()
    # a forged prune from this user is refused on the server
    response = page.request.get(f"{base}/admin/orchestrator/managedjob/plan/confirm/?prune=1")
    assert response.status == 403
    shot(page, "plan-applied")


def test_plan_page__a_plan_changed_after_confirmation_is_not_applied_then_prune(
    browser_page, admin_login, edited_manifest
) -> None:
    """The confirmation's plan is the one applied: an edit of the manifest after it refuses
    the apply; a user with the prune permission may then delete the job gone from it."""
    page = browser_page
    base = admin_login(page)
    page.goto(f"{base}/admin/orchestrator/managedjob/plan/")
    page.check("#orch-prune")
    page.click("input[value='Review and apply…']")
    page.wait_for_selector("#orch-confirm")
    assert "1 job deleted: plan-gone" in page.locator("#orch-confirm").inner_text()
    edited_manifest.write_text(textwrap.dedent(EDITED.replace("*/15", "*/20")))
    page.click("input[value='Apply 3 changes']")
    page.wait_for_selector("text=Nothing was applied")
    assert ManagedJob.objects.filter(name="plan-gone").exists()
    assert not ManagedJob.objects.filter(name="plan-new").exists()

    page.check("#orch-prune")
    page.click("input[value='Review and apply…']")
    page.click("input[value='Apply 3 changes']")
    page.wait_for_selector("text=1 job deleted")
    assert not ManagedJob.objects.filter(name="plan-gone").exists()
    assert page.locator("text=Nothing to apply: both engines match the manifest.").count() == 1
    shot(page, "plan-pruned")
