"""The status model on the real engines: every state reached the way an operator reaches it.

Each test drives the CLI, the admin, or a hand edit in pg_cron / django-celery-beat, then checks
that ``jobs list``, the admin's job list and the admin's job page all show the same state, and
that what they say agrees with ``SELECT ... FROM cron.job`` and the periodic task rows: a view
may never call a job active that its engine has paused, or the other way round.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery import current_app
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from orchestrator.models import JobRun, ManagedJob
from orchestrator.status import job_status
from tests.integration.cli_helpers import apply, jobs
from tests.integration.reconcile_helpers import clear_engines

MANIFEST = """
version: 1
jobs:
  sql-nightly:
    schedule: "0 3 * * *"
    target: pg_cron
    sql: SELECT 1
  task-hourly:
    schedule: "@hourly"
    task: orchestrator.ping
"""


@pytest.fixture(autouse=True)
def empty_engines() -> Iterator[None]:
    """Each test starts from empty engines and leaves none behind (pg_cron would keep running
    a test's jobs after the test)."""
    clear_engines()
    yield
    clear_engines()


def engine_rows() -> dict[str, bool]:
    """Each engine's own active flag, by job name, read straight from its tables."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT jobname, active FROM cron.job")
        rows = {name: bool(active) for name, active in cursor.fetchall()}
    rows.update(dict(PeriodicTask.objects.values_list("name", "enabled")))
    return rows


def admin_client() -> Client:
    user = User.objects.filter(username="status-admin").first() or User.objects.create_superuser(
        "status-admin", "status@example.com", "pw-status-admin"
    )
    client = Client()
    client.force_login(user)
    return client


def admin_list_states(client: Client) -> dict[str, str]:
    page = client.get(reverse("admin:orchestrator_managedjob_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    states = {}
    for row in re.findall(r"<tr.*?</tr>", html, flags=re.S):
        name = re.search(r'<span class="orch-name">([^<]+)</span>', row)
        state = re.search(r'class="orch-state" title="[^"]*">([a-z]+)</span>', row)
        if name and state:
            states[name.group(1)] = state.group(1)
    return states


def admin_page_state(client: Client, name: str) -> str:
    pk = ManagedJob.objects.get(name=name).pk
    page = client.get(reverse("admin:orchestrator_managedjob_change", args=[pk]))
    assert page.status_code == 200
    found = re.search(r'<span class="orch-state">([a-z]+)</span>', page.content.decode())
    assert found is not None
    return found.group(1)


def views_agree(expected: dict[str, str]) -> dict[str, dict]:
    """``jobs list``, the admin list and each admin job page show ``expected`` states, and
    every view's idea of the engine's flag is the engine's flag. Returns the list's rows."""
    status, out, _ = jobs("list", "--format", "json")
    assert status == 0
    listed = {row["name"]: row for row in json.loads(out)}
    engines = engine_rows()
    client = admin_client()
    on_admin = admin_list_states(client)
    for name, state in expected.items():
        assert listed[name]["state"] == state, listed[name]
        assert on_admin[name] == state
        assert admin_page_state(client, name) == state
        assert listed[name]["engine_active"] == engines.get(name), (name, listed[name])
        if listed[name]["next_run"] is not None:  # a next run is promised only if it runs
            assert engines.get(name) is True
        if state == "active":
            assert engines[name] is True
        if state in ("paused", "disabled"):
            assert engines[name] is False
    return listed


def plan_of(path: str) -> dict[str, dict]:
    status, out, _ = jobs("plan", "--manifest", path, "--format", "json")
    assert status == 0
    return {change["name"]: change for change in json.loads(out)["changes"]}


# --------------------------------------------------------------------------- active, paused


@pytest.mark.django_db
def test_status__active_then_paused_by_the_cli_in_both_engines(tmp_path: Path) -> None:
    """After apply both jobs are active with a next run; `jobs pause` makes both paused in
    cron.job and the periodic task, and every view says paused with no next run (`explain`'s
    text and `list`'s table included)."""
    path = apply(tmp_path, MANIFEST)
    listed = views_agree({"sql-nightly": "active", "task-hourly": "active"})
    assert listed["sql-nightly"]["next_run"] is not None
    assert listed["task-hourly"]["next_run"] is not None
    jobs("pause", "sql-nightly")
    jobs("pause", "task-hourly")
    listed = views_agree({"sql-nightly": "paused", "task-hourly": "paused"})
    assert listed["sql-nightly"]["next_run"] is None
    status, out, _ = jobs("explain", "task-hourly", "--manifest", path)
    assert status == 0
    assert "  state: paused (paused by an operator; celery has it paused)" in out.splitlines()
    status, out, _ = jobs("list")
    assert status == 0
    line = next(row for row in out.splitlines() if row.startswith("task-hourly "))
    assert line.split()[4] == "paused"


# --------------------------------------------------------------------------- drift


@pytest.mark.django_db
def test_status__pg_cron_resumed_by_hand_is_drift_and_apply_pauses_it_again(
    tmp_path: Path,
) -> None:
    """`jobs pause`, then `cron.alter_job(id, active := true)` by hand: the job runs again, so
    no view may say paused. Every view says drift (engine active, with a next run); plan
    shows the `active` difference and --check exits 2; apply pauses it again in cron.job."""
    path = apply(tmp_path, MANIFEST)
    jobs("pause", "sql-nightly")
    jobid = int(ManagedJob.objects.get(name="sql-nightly").engine_id)
    with connection.cursor() as cursor:
        # by hand, as the applying role may (managed jobs belong to the jobs role)
        cursor.execute("SELECT orchestrator_cron.alter_job(%s, NULL, NULL, NULL, true)", [jobid])
    listed = views_agree({"sql-nightly": "drift", "task-hourly": "active"})
    assert listed["sql-nightly"]["engine_active"] is True
    assert listed["sql-nightly"]["next_run"] is not None
    change = plan_of(path)["sql-nightly"]
    assert change["action"] == "drift"
    assert change["diff"]["active"] == {"from": True, "to": False}
    assert jobs("plan", "--manifest", path, "--check")[0] == 2
    apply(tmp_path, MANIFEST)
    assert engine_rows()["sql-nightly"] is False
    views_agree({"sql-nightly": "paused"})
    assert jobs("plan", "--manifest", path, "--check")[0] == 0


@pytest.mark.django_db
def test_status__task_disabled_in_beat_admin_is_drift_and_apply_resumes_it(
    tmp_path: Path,
) -> None:
    """A periodic task disabled with django-celery-beat's own admin action stops running, so
    no view may say active: every view says drift with no next run; apply re-enables it."""
    path = apply(tmp_path, MANIFEST)
    task = PeriodicTask.objects.get(name="task-hourly")
    response = admin_client().post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": "disable_tasks", "_selected_action": [task.pk]},
    )
    assert response.status_code == 302
    assert engine_rows()["task-hourly"] is False
    listed = views_agree({"task-hourly": "drift", "sql-nightly": "active"})
    assert listed["task-hourly"]["next_run"] is None
    assert "paused" in listed["task-hourly"]["detail"]
    assert plan_of(path)["task-hourly"]["diff"]["active"] == {"from": False, "to": True}
    apply(tmp_path, MANIFEST)
    views_agree({"task-hourly": "active"})
    assert jobs("plan", "--manifest", path, "--check")[0] == 0


@pytest.mark.django_db
def test_status__definition_edited_in_pg_cron_is_drift(tmp_path: Path) -> None:
    """A schedule changed by hand with cron.alter_job shows as drift naming the field."""
    apply(tmp_path, MANIFEST)
    jobid = int(ManagedJob.objects.get(name="sql-nightly").engine_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT orchestrator_cron.alter_job(%s, '*/5 * * * *', NULL, NULL, NULL)", [jobid]
        )
    listed = views_agree({"sql-nightly": "drift"})
    assert listed["sql-nightly"]["drift"]["schedule"] == {
        "from": "*/5 * * * *",
        "to": "0 3 * * *",
    }


# --------------------------------------------------------------------------- disabled, orphaned


@pytest.mark.django_db
def test_status__disabled_in_the_manifest(tmp_path: Path) -> None:
    """`enabled: false` applies the jobs inactive; every view says disabled, no next run."""
    apply(tmp_path, MANIFEST.replace("target: pg_cron", "target: pg_cron\n    enabled: false"))
    listed = views_agree({"sql-nightly": "disabled", "task-hourly": "active"})
    assert listed["sql-nightly"]["next_run"] is None


@pytest.mark.django_db
def test_status__removed_from_the_manifest_without_prune_is_orphaned(tmp_path: Path) -> None:
    """Applied, then dropped from the manifest and applied without --prune: the job keeps
    running in its engine, and every view says orphaned (engine active), not active under a
    definition the manifest no longer has. Putting it back makes it active again."""
    apply(tmp_path, MANIFEST)
    only_sql = MANIFEST.split("  task-hourly:")[0]
    apply(tmp_path, only_sql)
    listed = views_agree({"task-hourly": "orphaned", "sql-nightly": "active"})
    assert listed["task-hourly"]["engine_active"] is True
    assert "no longer in the manifest" in listed["task-hourly"]["detail"]
    apply(tmp_path, MANIFEST)
    views_agree({"task-hourly": "active"})


# --------------------------------------------------------------------------- ended states


def dispatch_like_beat(name: str) -> str:
    """Send a periodic task's message exactly as beat does (its task, kwargs and headers, plus
    the ``periodic_task_name`` header beat adds): a scheduled run, not a run-now."""
    task = PeriodicTask.objects.get(name=name)
    headers = {**json.loads(task.headers or "{}"), "periodic_task_name": name}
    result = current_app.send_task(
        task.task,
        args=json.loads(task.args or "[]"),
        kwargs=json.loads(task.kwargs or "{}"),
        queue=task.queue or None,
        headers=headers,
    )
    result.get(timeout=60)
    return str(result.id)


def wait_for_history(name: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        finished = JobRun.objects.filter(job=name, manual=False, finished__isnull=False)
        if finished.count() >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name}: fewer than {count} finished runs recorded")


@pytest.mark.django_db(transaction=True)
def test_status__max_runs_reached_is_retired_and_apply_keeps_it_off(
    tmp_path: Path, celery_worker
) -> None:
    """A `max_runs: 2` job run three times by its schedule: two runs, then the runner retires
    the periodic task. Every view says retired (no next run, 0 missed), and neither plan nor
    apply calls the disabled task drift or turns it back on."""
    path = apply(
        tmp_path,
        """
        version: 1
        jobs:
          twice-only:
            schedule: "* * * * *"
            task: orchestrator.ping
            max_runs: 2
        """,
    )
    for _ in range(3):
        dispatch_like_beat("twice-only")
    wait_for_history("twice-only", 3)
    assert engine_rows()["twice-only"] is False
    listed = views_agree({"twice-only": "retired"})
    assert listed["twice-only"]["next_run"] is None
    assert listed["twice-only"]["missed_24h"] == 0
    assert "twice-only" not in plan_of(path)
    apply(tmp_path, Path(path).read_text())
    assert engine_rows()["twice-only"] is False


@pytest.mark.django_db(transaction=True)
def test_status__one_time_job_that_fired_is_done_and_never_missed(
    tmp_path: Path, celery_worker
) -> None:
    """An `at` job fired by beat is done: no next run, never counted as missed, and the plan
    leaves it alone, whether or not beat has disabled the one-off task yet."""
    when = (timezone.now() + timedelta(seconds=8)).replace(microsecond=0)
    path = apply(
        tmp_path,
        f"""
        version: 1
        jobs:
          once:
            at: "{when.isoformat()}"
            task: orchestrator.ping
        """,
    )
    views_agree({"once": "active"})
    time.sleep(max(0.0, (when - timezone.now()).total_seconds()))
    dispatch_like_beat("once")
    wait_for_history("once", 1)
    listed = views_agree({"once": "done"})
    assert listed["once"]["next_run"] is None
    assert listed["once"]["missed_24h"] == 0
    assert "once" not in plan_of(path)
    later = job_status("once", now=timezone.now() + timedelta(hours=2))
    assert later is not None
    assert later.missed is None  # a fired one-time job owes nothing


@pytest.mark.django_db
def test_status__expires_passed_is_expired_and_beat_disables_it(tmp_path: Path) -> None:
    """A job whose `expires` has passed is expired in every view even before beat's next
    check; beat's own check (django-celery-beat's ``ModelEntry.is_due``) then disables the
    task, and the plan calls neither state drift."""
    expires = (timezone.now() + timedelta(seconds=6)).replace(microsecond=0)
    path = apply(
        tmp_path,
        f"""
        version: 1
        jobs:
          short-lived:
            schedule: "* * * * *"
            task: orchestrator.ping
            expires: "{expires.isoformat()}"
        """,
    )
    time.sleep(max(0.0, (expires - timezone.now()).total_seconds()) + 0.5)
    listed = views_agree({"short-lived": "expired"})
    assert listed["short-lived"]["next_run"] is None
    assert "short-lived" not in plan_of(path)
    ModelEntry(PeriodicTask.objects.get(name="short-lived"), app=current_app).is_due()
    assert engine_rows()["short-lived"] is False
    views_agree({"short-lived": "expired"})
    assert "short-lived" not in plan_of(path)
