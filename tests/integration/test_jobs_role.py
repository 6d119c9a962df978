"""SQL jobs run as the jobs role, and whatever the validator misses, the database refuses.

Each statement that once succeeded from a manifest (issue 12) is run here AS the jobs role,
through both engines, bypassing the validator that now refuses it: a pg_cron job scheduled
through ``orchestrator_cron.schedule`` and run by the real pg_cron launcher, and the Celery
runner on a real worker. The database must refuse each one (the error lands in the run
history) and nothing may change. The pg_cron half waits on a real minute, so it lives in
``test_pg_cron_minute``, whose one minute serves every test that needs a pg_cron run.
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from orchestrator import desired
from orchestrator.engines.celery.runner import RUNNER_TASK, JobFailed, run_sql
from orchestrator.errors import ManifestInvalid
from orchestrator.models import JobRun, ManagedJob
from tests.integration.reconcile_helpers import clear_engines

pytestmark = pytest.mark.django_db(transaction=True)

#: name -> (SQL a hostile manifest held, a fragment of the database's refusal)
FORBIDDEN = {
    "grant": ("GRANT SELECT ON auth_user TO PUBLIC", "must be owner|permission denied"),
    "schedule": (
        "SELECT cron.schedule('hidden-job', '* * * * *', 'SELECT 1')",
        "permission denied for schema cron",
    ),
    "alter-database": (
        "ALTER DATABASE {database} SET work_mem = '77MB'",
        "must be owner of database",
    ),
    "set-config-role": (
        "SELECT set_config('ro' || 'le', '{owner}', false)",
        "permission denied to set role",
    ),
    "do-set-role": (
        "DO $$ BEGIN EXECUTE 'SET ROLE {owner}'; END $$",
        "permission denied to set role",
    ),
    # A job erasing the record of runs (its own included): only the upkeep functions prune.
    "erase-history": ("DELETE FROM orchestrator_jobrun", "permission denied for table"),
    "erase-cron-history": ("DELETE FROM cron.job_run_details", "permission denied for schema cron"),
}


def statements() -> dict[str, tuple[str, str]]:
    values = {
        "database": connection.settings_dict["NAME"],
        "owner": connection.settings_dict["USER"],
    }
    return {name: (sql.format(**values), refusal) for name, (sql, refusal) in FORBIDDEN.items()}


def state(history_mark: int = 0) -> dict[str, object]:
    """What the forbidden statements would change: auth_user's privileges, the database's
    settings, the pg_cron jobs the applying role can see, the jobs role's own attributes, and
    the run history (a sentinel row; pg_cron's runs up to ``history_mark``)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relacl::text FROM pg_class WHERE oid = 'auth_user'::regclass")
        acl = cursor.fetchone()[0]
        cursor.execute(
            "SELECT coalesce(array_agg(array_to_string(setconfig, ',')), '{}') "
            "FROM pg_db_role_setting WHERE setdatabase = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        database_settings = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM cron.job WHERE jobname = 'hidden-job'")
        hidden = cursor.fetchone()[0]
        cursor.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, "
            "(SELECT count(*) FROM pg_auth_members WHERE member = r.oid) "
            "FROM pg_roles AS r WHERE rolname = %s",
            [settings.ORCHESTRATOR_JOBS_ROLE],
        )
        role = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM orchestrator_jobrun WHERE job = 'sentinel'")
        history = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM cron.job_run_details WHERE runid <= %s", [history_mark]
        )
        cron_history = cursor.fetchone()[0]
    return {
        "acl": acl,
        "database": database_settings,
        "hidden": hidden,
        "role": role,
        "history": history,
        "cron_history": cron_history,
    }


@pytest.fixture
def history_mark() -> int:
    """A run history row, and the newest pg_cron runid so far: what an eraser would take."""
    JobRun.objects.create(
        job="sentinel", engine="celery", engine_run_id="sentinel", status="succeeded"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(runid), 0) FROM cron.job_run_details")
        mark = int(cursor.fetchone()[0])
    yield mark
    JobRun.objects.filter(job="sentinel").delete()


@pytest.fixture
def clean() -> None:
    clear_engines()
    yield
    clear_engines()


def test_jobs_role__least_privileged_and_not_the_owner() -> None:
    """The jobs role is no superuser, may not create databases or roles, bypasses no row
    security, is a member of no role, and is not the role that owns the database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        )
        owner = cursor.fetchone()[0]
    assert owner != settings.ORCHESTRATOR_JOBS_ROLE
    assert state()["role"] == (False, False, False, False, 0)


def wait_for_cron_runs(jobs: list[str], timeout: float) -> dict[str, tuple[str, str, str]]:
    """The first finished run of each job: (status, return_message, username)."""
    deadline = time.monotonic() + timeout
    found: dict[str, tuple[str, str, str]] = {}
    while time.monotonic() < deadline and len(found) < len(jobs):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT ON (j.jobname) j.jobname, d.status, d.return_message, d.username"
                "  FROM cron.job_run_details AS d JOIN cron.job AS j USING (jobid)"
                " WHERE j.jobname = ANY(%s) AND d.status IN ('succeeded', 'failed')"
                " ORDER BY j.jobname, d.runid",
                [jobs],
            )
            found = {name: (status, message or "", user) for name, status, message, user in cursor}
        time.sleep(2)
    assert len(found) == len(jobs), f"pg_cron ran {sorted(found)} of {sorted(jobs)}"
    return found


def run_sql_job(celery_app, name: str, sql: str):
    """Run a job holding ``sql`` on the runner. The runner runs only registered definitions,
    so the job is registered as an apply would register it, past the validator on purpose
    (it refuses these statements): whatever the guard misses, the database must refuse."""
    ManagedJob.objects.update_or_create(
        name=name,
        defaults={
            "engine": "celery",
            "engine_id": f"startup:{name}",
            "spec_hash": "0" * 64,
            "definition": {"name": name, "body": {"kind": "sql", "sql": sql}},
            "applied_at": timezone.now(),
        },
    )
    return celery_app.send_task(RUNNER_TASK, kwargs={"name": name})


def test_jobs_role__the_celery_runner_connects_as_it(celery_worker, celery_app, clean) -> None:
    """The runner's SQL logs in as the jobs role: a body that raises unless current_user and
    session_user are the jobs role succeeds."""
    role = settings.ORCHESTRATOR_JOBS_ROLE
    sql = (
        f"DO $$ BEGIN IF current_user <> '{role}' OR session_user <> '{role}' THEN "
        "RAISE EXCEPTION 'ran as %', current_user; END IF; END $$"
    )
    result = run_sql_job(celery_app, "whoami", sql)
    assert result.get(timeout=30)["status"] == "succeeded"


def test_jobs_role__the_celery_runner_is_refused_each_forbidden_statement(
    celery_worker,
    celery_app,
    history_mark: int,
    clean: None,
) -> None:
    """The same statements through the runner on a real worker: each run fails with
    the database's refusal, recorded as failed in the run history, and nothing changed."""
    before = state(history_mark)
    for name, (sql, refusal) in statements().items():
        job = f"celery-forbidden-{name}"
        result = run_sql_job(celery_app, job, sql)
        with pytest.raises(Exception, match=refusal):
            result.get(timeout=30)
        run = wait_for_run(result.id)
        assert run.status == "failed_final", (name, run.message)
        assert any(part in run.message for part in refusal.split("|")), (name, run.message)
    assert state(history_mark) == before


def wait_for_run(task_id: str, timeout: float = 15) -> JobRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = JobRun.objects.filter(engine="celery", engine_run_id=task_id).first()
        if run is not None and run.status not in ("queued", "running"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"no finished run recorded for task {task_id}")


def test_jobs_role__its_connection_is_no_manifest_database() -> None:
    """The jobs role's connection alias is the runner's, not a database a manifest may name:
    `database: jobs` is refused like any unknown alias."""
    text = (
        "version: 1\njobs:\n  sneaky:\n    schedule: '@daily'\n    sql: SELECT 1\n"
        "    database: jobs\n"
    )
    with pytest.raises(ManifestInvalid, match="no database alias 'jobs'"):
        desired.load_text(text)


def test_jobs_role__without_its_connection_the_runner_refuses_sql(settings) -> None:
    """With no jobs role connection configured (JOBS_DATABASE_URL unset), a SQL job fails with
    a message saying so instead of running as the owner."""
    settings.ORCHESTRATOR_JOBS_CONNECTIONS = {}
    with pytest.raises(JobFailed, match="no jobs role connection for database 'default'"):
        run_sql("SELECT 1", "default", None)
