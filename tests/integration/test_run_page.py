"""The Runs list and a run's page on the real database: substring search over job names and
error text, links run <-> job, every attempt with its traceback and call, "Run again" behind
the run-now permission, and the traceback's bound enforced by PostgreSQL.

(A real worker's failing run reaching the page is in ``test_history``, which has the worker.)
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.contrib.auth.models import Permission, User
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import orchestrator.engines.celery.history  # noqa: F401 - records run-agains as queued in this (web) process
from orchestrator import reconcile
from orchestrator.models import TRACEBACK_LIMIT, JobRun, ManagedJob
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = pytest.mark.django_db

QUEUE = f"runpage-{uuid.uuid4().hex[:8]}"
MANIFEST = f"""
version: 1
jobs:
  runpage-nightly-report:
    schedule: "@daily"
    target: celery
    queue: {QUEUE}
    task: tasks.maintenance.reindex_schema
    kwargs: {{schema: reports}}
"""
TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/tasks/maintenance.py", line 51, in reindex_schema\n'
    'psycopg.errors.InvalidSchemaName: schema "reports" does not exist\n'
)


@pytest.fixture
def runs(tmp_path: Path, settings) -> Iterator[dict[str, JobRun]]:
    """One managed job with a retried-then-failed run (two attempts) and a succeeded run with
    dict output; the job's queue is deleted afterwards (run-again messages land there)."""
    clear_engines()
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(textwrap.dedent(MANIFEST))
    settings.ORCHESTRATOR_MANIFEST = str(manifest)
    reconcile.apply(placed_from(MANIFEST))
    now = timezone.now()
    common = {"job": "runpage-nightly-report", "engine": "celery", "worker": "w1@host", "pid": 7}
    first = JobRun.objects.create(
        **common, engine_run_id="task-1", attempt=1, status="retried",
        scheduled_for=now - timedelta(minutes=10), started=now - timedelta(minutes=10, seconds=-2),
        finished=now - timedelta(minutes=9), duration=timedelta(seconds=58),
        message='InvalidSchemaName: schema "reports" does not exist', traceback=TRACE,
        args=[], kwargs={"schema": "reports"},
    )  # fmt: skip
    second = JobRun.objects.create(
        **common, engine_run_id="task-1", attempt=2, status="failed",
        scheduled_for=now - timedelta(minutes=8), started=now - timedelta(minutes=8),
        finished=now - timedelta(minutes=7), duration=timedelta(milliseconds=491),
        message='InvalidSchemaName: schema "reports" does not exist (second try)',
        traceback=TRACE + "second attempt's frame\n", args=[], kwargs={"schema": "reports"},
    )  # fmt: skip
    good = JobRun.objects.create(
        **common, engine_run_id="task-2", attempt=1, status="succeeded",
        scheduled_for=now - timedelta(minutes=1), started=now - timedelta(minutes=1),
        finished=now, duration=timedelta(seconds=60), message='{"rows": 3, "name": "x"}',
    )  # fmt: skip
    other = JobRun.objects.create(
        job="runpage-gone", engine="pg_cron", engine_run_id="99", status="succeeded",
        started=now, message="",
    )  # fmt: skip
    yield {"first": first, "second": second, "good": good, "other": other}
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(QUEUE)
    client.close()
    clear_engines()


def _client(*permissions: str) -> Client:
    user = User.objects.create_user(f"u-{uuid.uuid4().hex[:6]}", password="x", is_staff=True)
    for dotted in ("orchestrator.view_jobrun", "orchestrator.view_managedjob", *permissions):
        app_label, codename = dotted.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def _list(client: Client, query: str) -> str:
    response = client.get(reverse("admin:orchestrator_jobrun_changelist") + query)
    assert response.status_code == 200
    return response.content.decode()


def test_run_list__search_matches_parts_of_job_names_and_error_text(runs) -> None:
    """Search takes a substring of a job's name (any case) or of the error, not only an exact
    name; a run id still matches exactly."""
    client = _client()
    by_name = _list(client, "?q=NIGHTLY")
    assert by_name.count('class="orch-run-link"') == 3
    by_error = _list(client, "?q=second+try")
    assert by_error.count('class="orch-run-link"') == 1
    assert reverse("admin:orchestrator_jobrun_change", args=[runs["second"].pk]) in by_error
    assert _list(client, "?q=task-2").count('class="orch-run-link"') == 1
    assert _list(client, "?q=nothing-like-it").count('class="orch-run-link"') == 0


def test_run_list__rows_link_to_their_run_and_their_job(runs) -> None:
    """Each row links to its run's page and, when the job is managed, to the job's page; the
    error column shows the error's first line; times carry ``<time datetime>``."""
    page = _list(_client(), "")
    job = ManagedJob.objects.get(name="runpage-nightly-report")
    for run in runs.values():
        assert reverse("admin:orchestrator_jobrun_change", args=[run.pk]) in page
    assert page.count(reverse("admin:orchestrator_managedjob_change", args=[job.pk])) == 3
    assert "runpage-gone <small" in page  # not managed: no link
    assert 'class="orch-error"' in page
    assert "second try" in page
    assert '<time class="orch-time" datetime="' in page
    assert "491 ms" in page


def test_run_page__every_attempt_with_traceback_call_lag_and_links(runs) -> None:
    """A run's page lists both attempts of the task id, each with its traceback, kwargs,
    worker and lag; it links to the job; output reads as pretty JSON, not a dict repr."""
    client = _client()
    job = ManagedJob.objects.get(name="runpage-nightly-report")
    page = client.get(reverse("admin:orchestrator_jobrun_change", args=[runs["first"].pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('class="orch-attempt') == 2
    assert body.count("Traceback (most recent call last):") == 2
    assert "second attempt&#x27;s frame" in body
    assert "&quot;schema&quot;: &quot;reports&quot;" in body
    assert "w1@host (pid 7)" in body
    assert "2.0 s</time> after its slot" in body
    assert reverse("admin:orchestrator_managedjob_change", args=[job.pk]) in body
    assert 'value="Run again"' not in body  # no run permission
    good = client.get(reverse("admin:orchestrator_jobrun_change", args=[runs["good"].pk]))
    assert (
        "{\n  &quot;name&quot;: &quot;x&quot;,\n  &quot;rows&quot;: 3\n}" in good.content.decode()
    )
    old = client.get(reverse("admin:orchestrator_jobrun_change", args=[runs["other"].pk]))
    assert old.status_code == 200
    assert "is not a managed job now" in old.content.decode()


def test_run_again__needs_the_run_permission_and_follows_the_new_run(runs) -> None:
    """ "Run again" is POST-only: 403 for a user without ``orchestrator.run_job`` (nothing is
    sent); with it, the job's run-now starts a run and the page redirects to that run."""
    url = reverse("admin:orchestrator_jobrun_run_again", args=[runs["second"].pk])
    before = JobRun.objects.filter(job="runpage-nightly-report").count()
    assert _client().post(url).status_code == 403
    assert JobRun.objects.filter(job="runpage-nightly-report").count() == before

    operator = _client("orchestrator.run_job")
    assert operator.get(url).status_code == 405
    page = operator.get(reverse("admin:orchestrator_jobrun_change", args=[runs["second"].pk]))
    assert 'value="Run again"' in page.content.decode()
    response = operator.post(url)
    assert response.status_code == 302
    new = JobRun.objects.filter(job="runpage-nightly-report", status="queued").get()
    assert response["Location"] == reverse("admin:orchestrator_jobrun_change", args=[new.pk])
    assert new.manual


def test_run_traceback__database_refuses_one_past_the_bound(runs) -> None:
    """The traceback bound holds in PostgreSQL too (``job_run_traceback_bounded``): a write
    that skips the code's cut is refused; the limit itself is accepted."""
    run = runs["first"]
    JobRun.objects.filter(pk=run.pk).update(traceback="x" * TRACEBACK_LIMIT)
    with pytest.raises(IntegrityError), transaction.atomic():
        JobRun.objects.filter(pk=run.pk).update(traceback="x" * (TRACEBACK_LIMIT + 1))
