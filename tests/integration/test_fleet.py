"""``manage.py fleet`` against a real worker of its own: status, ping, drain, resume, scale.

The worker consumes two queues nobody else uses (``fleet-a``, ``fleet-b``), so draining and
scaling it cannot disturb the session worker other tests rely on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.conftest import ROOT, service_env
from tests.faults.processes import Worker

pytestmark = pytest.mark.timeout(120)

DRAIN_URL = "/admin/celery_engine/worker/drain/"
RESUME_URL = "/admin/celery_engine/worker/resume/"


@pytest.fixture(scope="module")
def worker(celery_app: Any) -> Iterator[Worker]:
    celery_app.control.purge()
    process = Worker(queues="fleet-a,fleet-b", concurrency=2)
    try:
        process.wait_ready(celery_app)
        yield process
    finally:
        process.stop()


def fleet(*args: str) -> tuple[Any, str]:
    """Run the command in-process; return its JSON output and its stderr."""
    out, err = StringIO(), StringIO()
    call_command("fleet", *args, "--format", "json", stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.3)


def my_view(status: dict[str, Any], worker: Worker) -> dict[str, Any]:
    return next(w for w in status["workers"] if w["hostname"] == worker.hostname)


def test_ping_and_status_shape(worker: Worker) -> None:
    answered, _ = fleet("ping")
    assert worker.hostname in answered["workers"]

    status, _ = fleet("status", "--heartbeat-wait", "2.5")
    view = my_view(status, worker)
    assert view["pid"] == worker.pid
    assert view["pool"] == "TaskPool"
    assert view["concurrency"] == 2
    assert len(view["processes"]) == 2
    assert view["queues"] == ["fleet-a", "fleet-b"]
    assert view["active"] == []
    assert view["reserved"] == []
    assert isinstance(view["uptime"], int)
    # Heartbeats are sent every 2 s, so 2.5 s of listening catches one.
    assert view["heartbeat_source"] == "event"
    assert view["last_heartbeat"]
    names = {q["name"] for q in status["queues"]}
    assert {"default", "fleet-a", "fleet-b"} <= names
    assert isinstance(status["unacked"], int)


def test_drain_waits_for_active_tasks_then_resume_restores_the_queues(
    worker: Worker, celery_app: Any
) -> None:
    for _ in range(2):
        celery_app.send_task("tests.faults.jobs.sleep", args=[3], queue="fleet-a")
    wait_for(lambda: len(my_view(fleet("status", "--heartbeat-wait", "0")[0], worker)["active"]))

    started = time.monotonic()
    result, progress = fleet("drain", worker.hostname, "--timeout", "30")
    assert result == {
        "worker": worker.hostname,
        "queues": ["fleet-a", "fleet-b"],
        "drained": True,
        "waited": result["waited"],
    }
    assert time.monotonic() - started >= 1.0  # it did wait for the sleeping tasks
    assert "active" in progress  # progress went to stderr, stdout stayed pure JSON

    status, _ = fleet("status", "--heartbeat-wait", "0")
    view = my_view(status, worker)
    assert view["queues"] == []
    assert view["drained_queues"] == ["fleet-a", "fleet-b"]
    # A drained worker leaves new work queued, visible in the depth (priority sub-queue too).
    celery_app.send_task("tests.faults.jobs.sleep", args=[0], queue="fleet-a", priority=6)
    celery_app.send_task("tests.faults.jobs.sleep", args=[0], queue="fleet-a")
    time.sleep(1.5)
    depth = {q["name"]: q for q in fleet("status", "--heartbeat-wait", "0")[0]["queues"]}
    assert depth["fleet-a"]["depth"] == 2
    assert set(depth["fleet-a"]["by_priority"]) == {"0", "6"}

    resumed, _ = fleet("resume", worker.hostname)
    assert resumed["queues"] == ["fleet-a", "fleet-b"]

    def consumed() -> bool:
        status = fleet("status", "--heartbeat-wait", "0")[0]
        return {q["name"]: q["depth"] for q in status["queues"]}["fleet-a"] == 0

    wait_for(consumed)
    assert my_view(fleet("status", "--heartbeat-wait", "0")[0], worker)["queues"] == [
        "fleet-a",
        "fleet-b",
    ]
    with pytest.raises(CommandError) as error:
        fleet("resume", worker.hostname)
    assert error.value.returncode == 1
    assert worker.hostname in str(error.value)


def test_drain_timeout_exits_2_and_names_the_worker(worker: Worker, celery_app: Any) -> None:
    celery_app.send_task("tests.faults.jobs.sleep", args=[5], queue="fleet-b")
    wait_for(lambda: len(my_view(fleet("status", "--heartbeat-wait", "0")[0], worker)["active"]))
    with pytest.raises(CommandError) as error:
        fleet("drain", worker.hostname, "--timeout", "1")
    assert error.value.returncode == 2
    assert worker.hostname in str(error.value)
    assert "1 active" in str(error.value)
    fleet("resume", worker.hostname)


def test_scale_grows_and_shrinks_the_pool(worker: Worker) -> None:
    grown, _ = fleet("scale", worker.hostname, "3")
    assert grown == {"worker": worker.hostname, "from": 2, "to": 3}
    assert len(my_view(fleet("status", "--heartbeat-wait", "0")[0], worker)["processes"]) == 3
    shrunk, _ = fleet("scale", worker.hostname, "1")
    assert shrunk["to"] == 1
    assert len(my_view(fleet("status", "--heartbeat-wait", "0")[0], worker)["processes"]) == 1
    fleet("scale", worker.hostname, "2")
    with pytest.raises(CommandError) as error:
        fleet("scale", worker.hostname, "0")
    assert error.value.returncode == 1


@pytest.mark.usefixtures("worker")
def test_unknown_worker_exits_1_through_the_real_command() -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "fleet", "drain", "nobody@nowhere"],
        cwd=ROOT,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "'nobody@nowhere' did not answer" in done.stderr
    assert "workers that did:" in done.stderr


def _staff(username: str, *codenames: str) -> Any:
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(username, password="pw-for-tests", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="celery_engine", codename__in=codenames)
    )
    return user


@pytest.mark.django_db
def test_admin_workers_page_and_its_guarded_drain(worker: Worker) -> None:
    """View permission shows the page and no control; drain needs ``drain_worker`` and scale
    ``scale_worker`` (403 on the confirmation and on the POST, nothing changed); a permitted
    drain is confirmed first and then takes effect, and resume undoes it."""
    import re

    from django.test import Client

    viewer = Client(enforce_csrf_checks=True)
    viewer.force_login(_staff("viewer", "view_worker"))
    page = viewer.get("/admin/celery_engine/worker/")
    assert page.status_code == 200
    assert worker.hostname in page.content.decode()
    assert 'value="Drain"' not in page.content.decode()
    token = viewer.cookies["csrftoken"].value if "csrftoken" in viewer.cookies else ""
    refused = viewer.post(
        "/admin/celery_engine/worker/drain/",
        {"worker": worker.hostname, "csrfmiddlewaretoken": token},
    )
    assert refused.status_code == 403

    operator = Client(enforce_csrf_checks=True)
    operator.force_login(_staff("operator", "view_worker", "drain_worker"))
    assert operator.post(DRAIN_URL, {"worker": worker.hostname}).status_code == (
        403
    )  # no CSRF token
    page = operator.get("/admin/celery_engine/worker/").content.decode()
    assert "action=drain&amp;worker=" in page
    assert "action=scale" not in page  # no scale permission: no scale buttons
    confirm = operator.get(
        "/admin/celery_engine/worker/confirm/", {"action": "drain", "worker": worker.hostname}
    ).content.decode()
    assert 'value="Drain"' in confirm
    assert my_view(fleet("status", "--heartbeat-wait", "0")[0], worker)["queues"] != []
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirm).group(1)
    assert operator.get(
        "/admin/celery_engine/worker/confirm/",
        {"action": "scale", "worker": worker.hostname, "size": "3"},
    ).status_code == 403  # fmt: skip
    assert operator.post(
        "/admin/celery_engine/worker/scale/",
        {"worker": worker.hostname, "size": "3", "csrfmiddlewaretoken": token},
    ).status_code == 403  # fmt: skip
    assert len(my_view(fleet("status", "--heartbeat-wait", "0")[0], worker)["processes"]) == 2
    done = operator.post(
        "/admin/celery_engine/worker/drain/",
        {"worker": worker.hostname, "csrfmiddlewaretoken": token},
    )
    assert done.status_code == 302
    assert my_view(fleet("status", "--heartbeat-wait", "0")[0], worker)["queues"] == []
    page = operator.get("/admin/celery_engine/worker/").content.decode()
    assert "action=resume&amp;worker=" in page
    done = operator.post(
        "/admin/celery_engine/worker/resume/",
        {"worker": worker.hostname, "csrfmiddlewaretoken": token},
    )
    assert done.status_code == 302
    assert my_view(fleet("status", "--heartbeat-wait", "0")[0], worker)["queues"] == [
        "fleet-a",
        "fleet-b",
    ]
