"""The Jobs list and a job's page in Chromium with the shipped catalog applied (every job of
``jobs.yaml`` plus the built-in upkeep), at 1440 px and at 390 px: no sideways scrolling,
compact rows, names on one line, descriptions shown, the time zone stated once, and the next
few run times on the job page."""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from orchestrator import desired, reconcile
from orchestrator.engine_times import instants_between
from orchestrator.engines import backends
from orchestrator.models import JobRun, ManagedJob
from orchestrator.specs import Cron, Every, Startup
from orchestrator.status import JobStatus, job_statuses
from tests.conftest import ROOT
from tests.e2e.conftest import ARTIFACTS, WIDE, shot
from tests.faults.processes import Beat
from tests.integration.reconcile_helpers import clear_engines

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


#: the one job whose last run failed, and the one that has not run yet (a weekly job added
#: since its last Sunday): the rest succeeded, as on a healthy system
FAILED = "centralcloud-sync"
NEVER_RAN = "backup-archival"
#: when the application's workers last started (the startup jobs ran then)
BOOTED = timedelta(hours=2, minutes=14)


#: vacuum-analyze's week, oldest first: a database's nightly vacuum varies with the day's writes
NIGHTLY_SECONDS = (47.3, 52.8, 44.1, 61.6, 49.2, 55.9, 58.4)
#: the runs the fixture writes carry run ids in this namespace (removed after the test)
RUN_IDS = uuid.UUID("6f1d4c52-9a0e-4e47-b7a1-e2e000000000")


def _run_id(engine: str, index: int) -> str:
    """An engine's own kind of run id: a Celery task id, a pg_cron ``runid``."""
    if engine == "celery":
        return str(uuid.uuid5(RUN_IDS, str(index)))
    return str(48_213 + index)


def _took(name: str, engine: str) -> timedelta:
    """A stable, plausible duration: SQL upkeep takes milliseconds to seconds, tasks seconds
    to a couple of minutes, dumps minutes."""
    spread = zlib.crc32(name.encode()) % 1000 / 1000
    if "backup" in name:
        return timedelta(seconds=70 + 170 * spread)
    if engine == "pg_cron":
        return timedelta(seconds=0.04 + 3 * spread**2)
    return timedelta(seconds=0.6 + 95 * spread**3)


def _last_slot(found: JobStatus, now: datetime) -> datetime | None:
    """When the job's schedule last came due before ``now``, as its engine counts."""
    job = found.job
    if isinstance(job.trigger, Startup):
        return now - BOOTED
    if isinstance(job.trigger, Every):
        period = timedelta(seconds=job.trigger.seconds)
        if found.next_run is not None and found.next_run - period < now:
            return found.next_run - period
        return now - period / 3
    if isinstance(job.trigger, Cron):
        slots = instants_between(
            backends()[job.engine], job.trigger, job.timezone, now - timedelta(days=8), now, 1
        )
        return slots[-1] if slots else None
    return None  # a one-time job in the future has not run


def _history(now: datetime) -> None:
    """Each job's last run where its schedule puts it: succeeded, in a plausible time, on a
    worker (Celery) or a backend (pg_cron); one failure, one job yet to run; a week of
    nightly runs for the job page the test opens."""
    rows = list(ManagedJob.objects.all())
    for index, found in enumerate(job_statuses(rows)):
        name, engine = found.job.name, found.job.engine
        started = _last_slot(found, now)
        if started is None or name in (NEVER_RAN, "vacuum-analyze"):
            continue
        started += timedelta(milliseconds=120 + 37 * index)  # the engine's start latency
        took = timedelta(seconds=30.02) if name == FAILED else _took(name, engine)
        JobRun.objects.create(
            job=name, engine=engine, engine_run_id=_run_id(engine, index),
            status="failed" if name == FAILED else "succeeded",
            scheduled_for=started.replace(microsecond=0), started=started,
            finished=started + took, duration=took,
            worker="celery@worker-1" if engine == "celery" else "", pid=2100 + 7 * index,
            message="ConnectionError: centralcloud.internal:443 timed out after 30 s"
            if name == FAILED else "",
        )  # fmt: skip
    nightly = next(found for found in job_statuses(rows) if found.job.name == "vacuum-analyze")
    for day, started in enumerate(
        instants_between(
            backends()["celery"], nightly.job.trigger, "UTC", now - timedelta(days=8), now, 7
        )
    ):
        took = timedelta(seconds=NIGHTLY_SECONDS[day])
        JobRun.objects.create(
            job="vacuum-analyze", engine="celery", engine_run_id=_run_id("celery", 100 + day),
            status="succeeded", scheduled_for=started, started=started + timedelta(seconds=0.2),
            finished=started + took, duration=took, worker="celery@worker-1", pid=4100 + day,
        )  # fmt: skip


@pytest.fixture
def catalog(settings) -> Iterator[int]:
    """The shipped manifest applied with a healthy system's recent history; yields how many
    jobs the registry holds."""
    clear_engines()
    settings.ORCHESTRATOR_MANIFEST = str(ROOT / "jobs.yaml")
    reconcile.apply(desired.place(desired.load(ROOT / "jobs.yaml")))
    _history(timezone.now())
    names = list(ManagedJob.objects.values_list("name", flat=True))
    try:
        yield ManagedJob.objects.count()
    finally:
        clear_engines()
        JobRun.objects.filter(job__in=names).delete()


@pytest.fixture
def beat_leader() -> Iterator[Callable[[], None]]:
    """Our ``celery beat`` started at once (it takes seconds to boot, meanwhile the test logs
    in); yields a call that waits until it holds the leader lock, so the Jobs list shows a
    running scheduler as a deployed system does. Its broker is a Redis database no worker
    reads: a catalog slot that comes due meanwhile (a real backup task) is sent nowhere."""
    broker = urlsplit(django_settings.REDIS_URL)._replace(path="/15").geturl()
    beat = Beat(f"e2e-{uuid.uuid4().hex[:6]}", env={"REDIS_URL": broker})

    def wait(timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not backends()["celery"].health().healthy:
            assert beat.alive(), f"beat exited; see {beat.log}"
            assert time.monotonic() < deadline, f"beat took no leader lock; see {beat.log}"
            time.sleep(0.2)

    try:
        yield wait
    finally:
        beat.stop()


def _job_list(page, base: str, name: str) -> None:
    page.goto(f"{base}/admin/orchestrator/managedjob/")
    page.wait_for_selector("#result_list")
    shot(page, name)


def test_jobs_pages__read_well_at_1440_and_390_px(
    chromium, browser_page, narrow_page, admin_login, beat_leader, catalog
) -> None:
    """The list of every catalog job fits the screen's width at both sizes, one row per job
    is compact (no name wraps, a description takes two lines at most and a short one shows
    whole, the whole list well under 3,000 px), headers are not clipped, the time zone is said
    once above the table, the schedulers' banners follow the admin's dark theme, and a job's
    page lists its next runs."""
    assert catalog >= 30
    base = admin_login(browser_page)
    page = browser_page
    beat_leader()  # the README's picture shows both schedulers running
    _job_list(page, base, "jobs-1440")
    page.screenshot(path=str(ARTIFACTS / "readme-jobs.png"))
    assert page.evaluate(OVERFLOW) <= 0
    results = page.locator("#changelist .results")
    over = results.evaluate("e => e.scrollWidth - e.clientWidth")
    assert over <= 0, f"the table scrolls {over} px sideways at 1440 px"
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == catalog
    tallest_row = max(box["height"] for box in (rows.nth(i).bounding_box() for i in range(catalog)))
    # the name's line and two of description: what a job is, readable, and still compact
    assert tallest_row <= 56, f"a row is {tallest_row} px tall"
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 56 * catalog + 600, f"{height} px for {catalog} jobs"
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
    assert page.locator(".orch-scheduler").count() == 2
    assert page.locator(".orch-scheduler.orch-unhealthy").count() == 0
    short = page.locator("#result_list .orch-description", has_text="knowledge summary")
    assert short.evaluate("e => e.scrollHeight <= e.clientHeight && e.scrollWidth <= e.clientWidth")

    dark = chromium.new_page(color_scheme="dark", viewport=WIDE)
    dark.context.add_cookies(page.context.cookies())
    _job_list(dark, base, "jobs-1440-dark")
    banner = dark.locator(".orch-scheduler").first.evaluate(
        "e => getComputedStyle(e).backgroundColor.match(/\\d+/g).slice(0, 3).map(Number)"
    )
    assert sum(banner) / 3 < 128, f"a light banner ({banner}) on the dark theme"

    narrow = narrow_page
    narrow.context.add_cookies(page.context.cookies())
    _job_list(narrow, base, "jobs-390")
    assert narrow.evaluate(OVERFLOW) <= 0
    over = narrow.locator("#changelist .results").evaluate("e => e.scrollWidth - e.clientWidth")
    assert over <= 0, f"the table scrolls {over} px sideways at 390 px"

    job = ManagedJob.objects.get(name="vacuum-analyze")
    for view, label in ((page, "1440"), (narrow, "390")):
        view.goto(f"{base}/admin/orchestrator/managedjob/{job.pk}/change/")
        view.wait_for_selector(".orch-job")
        shot(view, f"job-{label}")
        if label == "1440":  # the README's picture: a tall screen's worth, down to its runs
            view.screenshot(
                path=str(ARTIFACTS / "readme-job.png"),
                full_page=True,
                clip={"x": 0, "y": 0, "width": WIDE["width"], "height": 1080},
            )
        assert view.evaluate(OVERFLOW) <= 0, f"the job page scrolls sideways at {label} px"
        assert view.locator(".orch-upcoming li").count() == 5
