"""Only the manifest defines what runs (issue 12, defect 5: the back door).

A staff user with django-celery-beat's change permission once edited a managed periodic task's
kwargs to ``{"body": {"kind": "command", "argv": [...]}}`` and the worker ran that program. Now a
schedule row carries only the job's name, the runner reads the definition from the registry,
and managed rows are read-only in django-celery-beat's admin. These run on a real worker, a
real beat (the project's leader scheduler) and the real admin.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from orchestrator import operations, reconcile
from orchestrator.models import JobRun, ManagedJob
from tests.faults.processes import Beat, Worker
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

QUEUE = f"rundef-{uuid.uuid4().hex[:8]}"
RUNNER = "orchestrator.run_job"


@pytest.fixture(scope="module")
def worker(celery_app: Any) -> Iterator[Worker]:
    """A real worker of its own, on a private queue."""
    process = Worker(queues=QUEUE, concurrency=1)
    try:
        process.wait_ready(celery_app)
        yield process
    finally:
        process.stop()


@pytest.fixture
def sequence() -> Iterator[str]:
    name = f"rundef_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE {name}")
        # SQL jobs run as the jobs role, which uses only what it is granted.
        cursor.execute(f"GRANT USAGE ON SEQUENCE {name} TO {settings.ORCHESTRATOR_JOBS_ROLE}")
    clear_engines()
    yield name
    clear_engines()
    JobRun.objects.filter(job__startswith="rundef-").delete()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SEQUENCE {name}")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file the smuggled program would create: it must never exist."""
    return tmp_path / f"pwned-{uuid.uuid4().hex[:6]}"


def _manifest(name: str, sequence: str, schedule: str = "every 2s") -> str:
    return f"""
        version: 1
        jobs:
          {name}:
            schedule: {schedule}
            target: celery
            queue: {QUEUE}
            sql: SELECT nextval('{sequence}')
        """


def _calls(sequence: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}")
        return int(cursor.fetchone()[0])


def _smuggled(name: str, marker: Path) -> str:
    return json.dumps({"name": name, "body": {"kind": "command", "argv": ["touch", str(marker)]}})


def test_run_definition__edited_row_runs_the_manifest_body_and_plans_as_drift(
    worker: Worker, celery_app: Any, sequence: str, marker: Path
) -> None:
    """A managed row whose kwargs were edited to carry a command body (the attack, and the
    pre-registry row shape): beat sends it, the worker runs the manifest's SQL and never the
    program; the plan shows the row as drift, and apply rewrites it to the name-only shape,
    after which the plan is clean."""
    placed = placed_from(_manifest("rundef-tick", sequence))
    reconcile.apply(placed)
    row = PeriodicTask.objects.get(name="rundef-tick")
    assert json.loads(row.kwargs) == {"name": "rundef-tick"}
    PeriodicTask.objects.filter(pk=row.pk).update(kwargs=_smuggled("rundef-tick", marker))

    beat = Beat(f"rundef-{uuid.uuid4().hex[:6]}")
    try:
        deadline = time.monotonic() + 60
        while _calls(sequence) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        beat.stop()
    assert _calls(sequence) >= 2, f"the job did not run twice; see {beat.log}, {worker.log}"
    assert not marker.exists(), "the program smuggled into the row's kwargs ran"
    assert JobRun.objects.filter(job="rundef-tick", status="succeeded").exists()
    assert "Task rundef-tick[" in Path(worker.log).read_text()  # beat's runs, by job name

    [change] = reconcile.plan(placed).of("drift")
    assert change.name == "rundef-tick"
    assert "kwargs" in change.diff
    reconcile.apply(placed)
    assert json.loads(PeriodicTask.objects.get(name="rundef-tick").kwargs) == {
        "name": "rundef-tick"
    }
    assert not reconcile.plan(placed).of("create", "update", "drift", "delete")


def test_run_definition__unknown_name_is_refused_recorded_and_runs_nothing(
    worker: Worker, celery_app: Any, sequence: str, marker: Path
) -> None:
    """A message naming no managed job (here with a command body besides) fails clearly: the
    result and the run history say no managed job has that name, and no program ran."""
    result = celery_app.send_task(
        RUNNER, kwargs=json.loads(_smuggled("rundef-nope", marker)), queue=QUEUE
    )
    with pytest.raises(Exception, match="no managed job has this name"):
        result.get(timeout=30)
    assert not marker.exists()
    deadline = time.monotonic() + 10
    run = None
    while run is None and time.monotonic() < deadline:
        run = JobRun.objects.filter(engine_run_id=result.id, status="failed_final").first()
        time.sleep(0.2)
    assert run is not None
    assert run.job == "rundef-nope"
    assert "no managed job has this name" in run.message


def test_run_definition__job_pruned_after_queueing_runs_nothing(
    worker: Worker, celery_app: Any, sequence: str
) -> None:
    """A run queued for a job that is no longer registered when it starts is refused."""
    placed = placed_from(_manifest("rundef-gone", sequence, '"@daily"'))
    reconcile.apply(placed)
    ManagedJob.objects.filter(name="rundef-gone").delete()
    result = celery_app.send_task(RUNNER, kwargs={"name": "rundef-gone"}, queue=QUEUE)
    with pytest.raises(Exception, match="no managed job has this name"):
        result.get(timeout=30)
    assert _calls(sequence) == 0


def test_run_definition__hand_made_schedule_naming_a_managed_job_is_refused(
    worker: Worker, celery_app: Any, sequence: str
) -> None:
    """A hand-made periodic task calling the runner with a managed job's name (to run it on a
    schedule of its own) is refused: the message's ``periodic_task_name`` is not the job's.
    The job's own run-now runs, and Celery's log shows it under the job's name (shadow)."""
    reconcile.apply(placed_from(_manifest("rundef-job", sequence, '"@daily"')))
    result = celery_app.send_task(
        RUNNER,
        kwargs={"name": "rundef-job"},
        queue=QUEUE,
        headers={"periodic_task_name": "my-own-schedule"},
    )
    with pytest.raises(Exception, match="not this job's schedule"):
        result.get(timeout=30)
    assert _calls(sequence) == 0
    # The same job's own run-now still runs it, shown under the job's name in Celery's log.
    own = celery_app.AsyncResult(operations.run_now("rundef-job"))
    assert own.get(timeout=30)["status"] == "succeeded"
    assert _calls(sequence) == 1
    assert f"rundef-job[{own.id}]" in Path(worker.log).read_text()


def test_run_definition__result_wait_is_bounded(celery_app: Any) -> None:
    """Guard for the tests above: waiting on an unknown task id times out, never hangs."""
    with pytest.raises(CeleryTimeout):
        celery_app.AsyncResult(uuid.uuid4().hex).get(timeout=0.5)


# --------------------------------------------------------------------------- the beat admin


def _beat_editor() -> Client:
    """A staff user holding exactly django-celery-beat's view, change and delete permissions."""
    user = User.objects.create_user(f"beat-{uuid.uuid4().hex[:6]}", password="x", is_staff=True)
    for codename in ("view_periodictask", "change_periodictask", "delete_periodictask"):
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="django_celery_beat", codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def _form(task: PeriodicTask, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": task.name,
        "regtask": "",
        "task": task.task,
        "enabled": "on" if task.enabled else "",
        "description": task.description,
        "interval": task.interval_id or "",
        "crontab": task.crontab_id or "",
        "solar": "",
        "clocked": task.clocked_id or "",
        "start_time_0": "",
        "start_time_1": "",
        "args": task.args,
        "kwargs": task.kwargs,
        "expires_0": "",
        "expires_1": "",
        "expire_seconds": "",
        "queue": task.queue or "",
        "exchange": "",
        "routing_key": "",
        "priority": "",
        "headers": task.headers,
        "_save": "Save",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_run_definition__managed_rows_are_read_only_in_the_beat_admin(
    sequence: str, marker: Path
) -> None:
    """In django-celery-beat's admin a managed row is marked and linked to its job page, its
    change form is read-only (a POSTed edit is refused, the row unchanged) and it cannot be
    deleted (alone or in a bulk delete); a hand-made periodic task in the same list stays
    editable and deletable."""
    reconcile.apply(placed_from(_manifest("rundef-admin", sequence, '"@daily"')))
    managed = PeriodicTask.objects.get(name="rundef-admin")
    job = ManagedJob.objects.get(name="rundef-admin")
    every, _ = IntervalSchedule.objects.get_or_create(every=3600, period=IntervalSchedule.SECONDS)
    hand_made = PeriodicTask.objects.create(
        name="rundef-hand-made", task="tests.faults.jobs.effect", interval=every, kwargs="{}"
    )
    client = _beat_editor()
    job_page = reverse("admin:orchestrator_managedjob_change", args=[job.pk])

    listing = client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert listing.status_code == 200
    assert job_page in listing.content.decode()

    change_url = reverse("admin:django_celery_beat_periodictask_change", args=[managed.pk])
    page = client.get(change_url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert job_page in page.content.decode()
    before = PeriodicTask.objects.get(pk=managed.pk).kwargs
    edit = client.post(change_url, _form(managed, kwargs=_smuggled("rundef-admin", marker)))
    assert edit.status_code == 403
    assert PeriodicTask.objects.get(pk=managed.pk).kwargs == before

    delete_url = reverse("admin:django_celery_beat_periodictask_delete", args=[managed.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:django_celery_beat_periodictask_changelist")
    bulk = {"action": "delete_selected", "_selected_action": [managed.pk], "post": "yes"}
    assert client.post(changelist, bulk).status_code == 403
    assert PeriodicTask.objects.filter(pk=managed.pk).exists()

    hand_url = reverse("admin:django_celery_beat_periodictask_change", args=[hand_made.pk])
    assert 'name="_save"' in client.get(hand_url).content.decode()
    hand_made.refresh_from_db()
    saved = client.post(hand_url, _form(hand_made, description="edited by hand"))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert PeriodicTask.objects.get(pk=hand_made.pk).description == "edited by hand"
    hand_delete = reverse("admin:django_celery_beat_periodictask_delete", args=[hand_made.pk])
    assert client.post(hand_delete, {"post": "yes"}).status_code == 302
    assert not PeriodicTask.objects.filter(pk=hand_made.pk).exists()
