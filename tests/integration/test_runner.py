"""Jobs placed on Celery run through ``orchestrator.run_job`` on a real worker, with the
manifest's retries, timeouts and overlap policy, whichever body they have."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.db import connection

from orchestrator import reconcile
from tests.integration.reconcile_helpers import apply_and_run, clear_engines, placed_from

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sequence() -> str:
    """A sequence the job's SQL may use: SQL jobs run as the jobs role, which uses only what
    it is granted."""
    name = f"seq_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE {name}")
        cursor.execute(
            f"GRANT USAGE, SELECT ON SEQUENCE {name} TO {settings.ORCHESTRATOR_JOBS_ROLE}"
        )
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SEQUENCE {name}")


@pytest.fixture(autouse=True)
def empty_engines() -> Iterator[None]:
    """Runs need their job in the registry: each test applies its own, on empty engines."""
    clear_engines()
    yield
    clear_engines()


def run(manifest: str, celery_app) -> object:
    return celery_app.AsyncResult(apply_and_run(manifest))


def test_runner__failing_twice_then_succeeding_takes_three_attempts(
    celery_worker,
    celery_app,
    sequence,
) -> None:
    """retries {max: 3, backoff: 0}: the body fails on attempts 1 and 2 (a division by zero
    until the sequence reaches 3; not a constant 1/0, which the planner folds up front) and
    succeeds on the third; the result says succeeded."""
    result = run(
        f"""
        version: 1
        jobs:
          flaky:
            schedule: "@daily"
            target: celery
            retries: {{max: 3, backoff: 0}}
            sql: SELECT 1 / (CASE WHEN nextval('{sequence}') < 3 THEN 0 ELSE 1 END)
        """,
        celery_app,
    )
    assert result.get(timeout=30)["status"] == "succeeded"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_value FROM {sequence}")
        assert cursor.fetchone()[0] == 3


def test_runner__without_retries_a_failure_is_recorded_once(
    celery_worker,
    celery_app,
    sequence,
) -> None:
    """No retries: the first failure is final, and Celery holds the database's error."""
    result = run(
        f"""
        version: 1
        jobs:
          broken:
            schedule: "@daily"
            target: celery
            sql: SELECT 1 / (nextval('{sequence}') - 1)
        """,
        celery_app,
    )
    with pytest.raises(Exception, match="division by zero"):
        result.get(timeout=30)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_value FROM {sequence}")
        assert cursor.fetchone()[0] == 1


def test_runner__timeout_cancels_a_long_statement(celery_worker, celery_app) -> None:
    """timeout: 1s stops a 20-second statement (statement_timeout) within seconds."""
    started = time.monotonic()
    result = run(
        """
        version: 1
        jobs:
          slow:
            schedule: "@daily"
            target: celery
            timeout: 1s
            sql: SELECT pg_sleep(20)
        """,
        celery_app,
    )
    with pytest.raises(Exception, match="statement timeout"):
        result.get(timeout=30)
    assert time.monotonic() - started < 15


def test_runner__overlap_skip_skips_a_run_while_one_is_going(celery_worker, celery_app) -> None:
    """overlap: skip holds an advisory lock per job: a second run that starts while the
    first holds it is skipped, not queued."""
    manifest = """
        version: 1
        jobs:
          exclusive:
            schedule: "@daily"
            target: celery
            overlap: skip
            sql: SELECT pg_sleep(3)
        """
    first = run(manifest, celery_app)
    time.sleep(1)
    second = run(manifest, celery_app)
    statuses = sorted([first.get(timeout=30)["status"], second.get(timeout=30)["status"]])
    assert statuses == ["skipped", "succeeded"]


def test_runner__command_gets_the_database_through_libpq_env(celery_worker, celery_app) -> None:
    """A command body runs without a shell, connected to the application database through
    PGHOST/PGDATABASE/PGUSER and a PGPASSFILE (psql asks for no password)."""
    result = run(
        """
        version: 1
        jobs:
          whoami:
            schedule: "@daily"
            command: psql -Atc "select current_database() || ' ' || current_user"
        """,
        celery_app,
    )
    assert result.get(timeout=30)["output"].strip() == "orchestrator orchestrator"


def test_beat__picks_up_an_applied_job_without_a_restart(
    celery_worker, celery_app, sequence
) -> None:
    """With beat already running, an applied every-2s job starts running within 10 s: the
    bulk apply bumps django-celery-beat's change counter once and beat reloads."""
    import subprocess
    import sys

    from tests.conftest import ROOT, service_env

    clear_engines()
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "project", "beat", "--loglevel=INFO",
         "--pidfile=", "-S", "django_celery_beat.schedulers:DatabaseScheduler"],
        cwd=ROOT, env=service_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(4)  # beat is up and has loaded its (empty) schedule
        reconcile.apply(
            placed_from(
                f"""
                version: 1
                jobs:
                  tick:
                    schedule: every 2s
                    sql: SELECT nextval('{sequence}')
                """
            )
        )
        applied = time.monotonic()
        ran = None
        while time.monotonic() - applied < 20 and ran is None:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT is_called FROM {sequence}")
                if cursor.fetchone()[0]:
                    ran = time.monotonic() - applied
            time.sleep(0.2)
        assert ran is not None
        assert ran < 10
    finally:
        beat.terminate()
        beat.wait(timeout=20)
        clear_engines()


def test_beat__max_runs_stops_a_job_after_that_many_runs(
    celery_worker,
    celery_app,
    sequence,
) -> None:
    """max_runs: 2 on an every-2s job: two scheduled runs do the work, the third is skipped and
    retires the periodic task (disabled), so the sequence stops at 2."""
    import subprocess
    import sys

    from django_celery_beat.models import PeriodicTask

    from tests.conftest import ROOT, service_env

    clear_engines()
    reconcile.apply(
        placed_from(
            f"""
            version: 1
            jobs:
              twice:
                schedule: every 2s
                max_runs: 2
                sql: SELECT nextval('{sequence}')
            """
        )
    )
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "project", "beat", "--loglevel=INFO",
         "--pidfile=", "-S", "django_celery_beat.schedulers:DatabaseScheduler"],
        cwd=ROOT, env=service_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and PeriodicTask.objects.get(name="twice").enabled:
            time.sleep(0.5)
        assert not PeriodicTask.objects.get(name="twice").enabled
        time.sleep(5)  # nothing runs after retirement
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT last_value FROM {sequence}")
            assert cursor.fetchone()[0] == 2
    finally:
        beat.terminate()
        beat.wait(timeout=20)
        clear_engines()


def test_result_wait_is_bounded(celery_app) -> None:
    """Guard for the tests above: waiting on an unknown task id times out, it never hangs."""
    with pytest.raises(CeleryTimeout):
        celery_app.AsyncResult(uuid.uuid4().hex).get(timeout=0.5)
