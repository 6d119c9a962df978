"""Who may see and do what in the admin: every page and action against six kinds of user, and
``manage.py check --deploy`` clean under production settings.

Expected codes: 302 to the login page for anonymous and non-staff users (the admin's own
gate); 403 for staff lacking the model's view permission or the action's custom permission;
200 for pages they may see; 302 back to the job for a permitted control. An action a user may
not run is also checked not to have happened (the job stays unpaused).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

import orchestrator.engines.celery.history  # noqa: F401 - records run-nows as queued in this (web) process
from orchestrator import reconcile
from orchestrator.models import JobRun, ManagedJob
from tests.conftest import ROOT
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = pytest.mark.django_db

QUEUE = "perm-test"
MANIFEST = f"""
version: 1
jobs:
  perm-sql:
    schedule: "*/5 * * * *"
    target: pg_cron
    sql: SELECT 1
  perm-task:
    schedule: "@hourly"
    target: celery
    queue: {QUEUE}
    sql: SELECT 2
"""

VIEW = [
    "orchestrator.view_managedjob",
    "orchestrator.view_jobrun",
    "django_celery_beat.view_periodictask",
]
OPERATOR = [*VIEW, "orchestrator.pause_job", "orchestrator.run_job", "orchestrator.apply_manifest"]
ROLES = ("anonymous", "nonstaff", "staff", "viewer", "operator", "superuser")


def _user(role: str) -> User | None:
    if role == "anonymous":
        return None
    user = User.objects.create_user(
        f"u-{role}",
        password="x",
        is_staff=role != "nonstaff",
        is_superuser=role == "superuser",
    )
    names = {"viewer": VIEW, "operator": OPERATOR}.get(role, [])
    for name in names:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def jobs(tmp_path: Path, settings) -> dict[str, ManagedJob]:
    """Two managed jobs (one per engine), a run, and a hand-made pg_cron job; all rolled back."""
    clear_engines()
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(textwrap.dedent(MANIFEST))
    settings.ORCHESTRATOR_MANIFEST = str(manifest)
    reconcile.apply(placed_from(MANIFEST))
    with connection.cursor() as cursor:
        cursor.execute("SELECT cron.schedule('perm-handmade', '0 3 * * *', 'SELECT 3')")
    JobRun.objects.create(
        job="perm-sql", engine="pg_cron", engine_run_id="1", status="failed", message="boom"
    )
    yield {job.name: job for job in ManagedJob.objects.all()}
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(QUEUE)
    client.close()


def _client(role: str) -> Client:
    client = Client()
    user = _user(role)
    if user is not None:
        client.force_login(user)
    return client


def pages(jobs: dict[str, ManagedJob]) -> dict[str, str]:
    job = jobs["perm-sql"]
    return {
        "jobs": reverse("admin:orchestrator_managedjob_changelist"),
        "job": reverse("admin:orchestrator_managedjob_change", args=[job.pk]),
        "runs": reverse("admin:orchestrator_jobrun_changelist"),
        "plan": reverse("admin:orchestrator_managedjob_plan"),
        "unmanaged": reverse("admin:orchestrator_managedjob_unmanaged"),
        "beat": reverse("admin:django_celery_beat_periodictask_changelist"),
    }


PAGE_EXPECTED = {
    "anonymous": 302,
    "nonstaff": 302,
    "staff": 403,
    "viewer": 200,
    "operator": 200,
    "superuser": 200,
}


@pytest.mark.parametrize("role", ROLES)
def test_admin_permissions__pages(role: str, jobs: dict[str, ManagedJob]) -> None:
    """Every orchestrator page: login redirect, 403 without view permission, else 200; the
    index itself is open to any staff user."""
    client = _client(role)
    index = client.get(reverse("admin:index"))
    assert index.status_code == (302 if role in ("anonymous", "nonstaff") else 200)
    for name, url in pages(jobs).items():
        response = client.get(url)
        assert response.status_code == PAGE_EXPECTED[role], (role, name)
        if response.status_code == 302:
            assert "/admin/login/" in response["Location"]
    if PAGE_EXPECTED[role] == 200:
        body = client.get(pages(jobs)["jobs"]).content.decode()
        assert "perm-sql" in body
        assert "perm-task" in body
        assert "perm-handmade" in client.get(pages(jobs)["unmanaged"]).content.decode()
        assert "boom" in client.get(pages(jobs)["runs"]).content.decode()


CONTROL_EXPECTED = {
    "anonymous": 302,
    "nonstaff": 302,
    "staff": 403,
    "viewer": 403,
    "operator": 302,
    "superuser": 302,
}


@pytest.mark.parametrize("role", ROLES)
def test_admin_permissions__controls(role: str, jobs: dict[str, ManagedJob]) -> None:
    """Pause, resume, run now and apply: POST-only, CSRF-checked, and 403 without their
    custom permission; when allowed, each takes effect and redirects."""
    client = _client(role)
    job = jobs["perm-task"]
    allowed = CONTROL_EXPECTED[role] == 302 and role in ("operator", "superuser")

    response = client.post(reverse("admin:orchestrator_managedjob_pause", args=[job.pk]))
    assert response.status_code == CONTROL_EXPECTED[role]
    job.refresh_from_db()
    assert job.paused is allowed
    assert PeriodicTask.objects.get(pk=int(job.engine_id)).enabled is not allowed

    response = client.post(reverse("admin:orchestrator_managedjob_resume", args=[job.pk]))
    assert response.status_code == CONTROL_EXPECTED[role]
    job.refresh_from_db()
    assert job.paused is False

    before = JobRun.objects.filter(job=job.name).count()
    response = client.post(reverse("admin:orchestrator_managedjob_run", args=[job.pk]))
    assert response.status_code == CONTROL_EXPECTED[role]
    assert (JobRun.objects.filter(job=job.name, status="queued").count() > before) is allowed

    response = client.post(reverse("admin:orchestrator_managedjob_apply"))
    assert response.status_code == CONTROL_EXPECTED[role]

    if allowed:
        assert client.get(
            reverse("admin:orchestrator_managedjob_pause", args=[job.pk])
        ).status_code == 405  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_admin_permissions__changelist_actions(role: str, jobs: dict[str, ManagedJob]) -> None:
    """The bulk actions (ours and django-celery-beat's) run only with their permissions: the
    view-only user posting them changes nothing, and beat's disable needs change permission."""
    client = _client(role)
    job = jobs["perm-sql"]
    response = client.post(
        reverse("admin:orchestrator_managedjob_changelist"),
        {"action": "pause_selected", "_selected_action": [job.pk]},
    )
    # 200: a user with no permitted action gets the list again, the action not run.
    expected = {"anonymous": 302, "nonstaff": 302, "staff": 403, "viewer": 200}.get(role, 302)
    assert response.status_code == expected
    job.refresh_from_db()
    assert job.paused is (role in ("operator", "superuser"))

    task = PeriodicTask.objects.get(pk=int(jobs["perm-task"].engine_id))
    response = client.post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": "disable_tasks", "_selected_action": [task.pk]},
    )
    assert response.status_code == (200 if role in ("viewer", "operator") else expected)
    task.refresh_from_db()
    assert task.enabled is (role != "superuser")  # operator has no change_periodictask


def test_admin_permissions__prune_needs_its_own_permission(
    jobs: dict[str, ManagedJob], settings, tmp_path: Path
) -> None:
    """Deleting jobs gone from the manifest needs ``orchestrator.prune_jobs`` on top of apply:
    without it the plan page offers no prune, the confirmation and the apply answer 403 to a
    forged ``prune`` and delete nothing; with it the confirmed prune deletes the job. An apply
    POST without a confirmed plan applies nothing."""
    manifest = tmp_path / "pruned.yaml"
    manifest.write_text(textwrap.dedent(MANIFEST).split("  perm-task:")[0])
    settings.ORCHESTRATOR_MANIFEST = str(manifest)
    plan_url = reverse("admin:orchestrator_managedjob_plan")
    confirm_url = reverse("admin:orchestrator_managedjob_confirm")
    apply_url = reverse("admin:orchestrator_managedjob_apply")

    operator = _client("operator")
    page = operator.get(plan_url)
    assert page.status_code == 200
    assert b'name="prune"' not in page.content
    assert operator.get(confirm_url + "?prune=1").status_code == 403
    shown = operator.get(confirm_url).context["fingerprint"]
    assert operator.post(apply_url, {"fingerprint": shown, "prune": "1"}).status_code == 403
    assert operator.post(apply_url).status_code == 302  # no confirmed plan: nothing applied
    assert ManagedJob.objects.filter(name="perm-task").exists()

    pruner = Client()
    user = User.objects.create_user("u-pruner", password="x", is_staff=True)
    for name in (*OPERATOR, "orchestrator.prune_jobs"):
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    pruner.force_login(user)
    assert b'name="prune"' in pruner.get(plan_url).content
    shown = pruner.get(confirm_url + "?prune=1").context["fingerprint"]
    assert pruner.post(apply_url, {"fingerprint": shown, "prune": "1"}).status_code == 302
    assert not ManagedJob.objects.filter(name="perm-task").exists()


def test_admin_permissions__csrf_is_enforced_on_controls(jobs: dict[str, ManagedJob]) -> None:
    """A control POSTed without the CSRF token is refused (403) even for a superuser."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(_user("superuser"))
    job = jobs["perm-task"]
    response = client.post(reverse("admin:orchestrator_managedjob_pause", args=[job.pk]))
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.paused is False


def test_admin_permissions__check_deploy_is_clean_with_production_settings() -> None:
    """``manage.py check --deploy`` reports no issue (warnings fail) with a long random
    SECRET_KEY, DEBUG off, secure cookies, HTTPS redirect and HSTS, behind a TLS proxy."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DEBUG": "0",
        "SECURE_COOKIES": "1",
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "BEHIND_TLS_PROXY": "1",
        "DATABASE_URL": str(os.environ.get("DATABASE_URL") or _setting_url()),
        "REDIS_URL": settings.REDIS_URL,
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def _setting_url() -> str:
    database = settings.DATABASES["default"]
    return (
        f"postgresql://{quote(database['USER'])}:{quote(database['PASSWORD'])}@"
        f"{quote(str(database['HOST']), safe='')}/{database['NAME']}"
    )
