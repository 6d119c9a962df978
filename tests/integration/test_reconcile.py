"""The reconciler on the real pg_cron and django-celery-beat tables, in one transaction."""

from __future__ import annotations

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from orchestrator import reconcile
from orchestrator.errors import OrchestratorError
from orchestrator.models import ManagedJob
from orchestrator.plan import PlanRefused
from tests.integration.reconcile_helpers import clear_engines, placed_from, snapshot

BASE = """
version: 1
jobs:
  vacuum-analyze:
    schedule: "0 23 * * *"
    sql: VACUUM ANALYZE
  purge-old:
    schedule: "*/15 * * * *"
    sql: DELETE FROM django_session WHERE expire_date < now()
  ping-hourly:
    schedule: "@hourly"
    task: orchestrator.ping
    kwargs: {token: hourly}
  berlin-report:
    schedule: "0 7 * * 1-5"
    timezone: Europe/Berlin
    sql: SELECT count(*) FROM django_session
"""

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_engines() -> None:
    clear_engines()


def cron_jobs() -> dict[str, tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT jobname, jobid, schedule, command, active FROM cron.job")
        return {row[0]: row[1:] for row in cursor.fetchall()}


def test_apply__from_empty_creates_each_job_in_its_engine() -> None:
    """SQL jobs pg_cron honours land in cron.job; the task and the Berlin-time SQL land in
    django-celery-beat; the registry records each with its engine id."""
    outcome = reconcile.apply(placed_from(BASE))
    assert outcome.summary()["create"] == 4
    jobs = cron_jobs()
    assert set(jobs) == {"vacuum-analyze", "purge-old"}
    assert jobs["vacuum-analyze"][1:3] == ("0 23 * * *", "VACUUM ANALYZE")
    tasks = {t.name: t for t in PeriodicTask.objects.select_related("crontab")}
    assert set(tasks) == {"ping-hourly", "berlin-report"}
    berlin = tasks["berlin-report"]
    assert berlin.task == "orchestrator.run_job"
    assert str(berlin.crontab.timezone) == "Europe/Berlin"
    assert (berlin.crontab.minute, berlin.crontab.hour, berlin.crontab.day_of_week) == (
        "0", "7", "1-5",
    )  # fmt: skip
    registry = {row.name: row for row in ManagedJob.objects.all()}
    assert registry["purge-old"].engine_id == str(jobs["purge-old"][0])
    assert registry["ping-hourly"].engine_id == str(tasks["ping-hourly"].pk)
    assert registry["berlin-report"].reasons  # the classifier's words are kept


def test_apply__second_apply_is_a_no_op() -> None:
    """Re-applying the same manifest changes nothing: same ids, same rows, and beat's change
    counter is not bumped (beat does not reload for nothing)."""
    placed = placed_from(BASE)
    reconcile.apply(placed)
    before = snapshot()
    counter = PeriodicTasks.last_change()
    outcome = reconcile.apply(placed)
    assert outcome.summary()["unchanged"] == 4
    assert not outcome.plan.pending()
    assert snapshot() == before
    assert PeriodicTasks.last_change() == counter


def test_plan__edit_shows_a_field_diff_and_apply_keeps_the_id() -> None:
    """A changed schedule is an update with a from/to diff; pg_cron keeps the job's id."""
    reconcile.apply(placed_from(BASE))
    jobid = cron_jobs()["purge-old"][0]
    edited = placed_from(BASE.replace('"*/15 * * * *"', '"*/5 * * * *"'))
    plan = reconcile.plan(edited)
    [change] = plan.of("update")
    assert change.name == "purge-old"
    assert change.diff["trigger"] == {
        "from": {"kind": "cron", "expr": "*/15 * * * *"},
        "to": {"kind": "cron", "expr": "*/5 * * * *"},
    }
    reconcile.apply(edited)
    assert cron_jobs()["purge-old"][:2] == (jobid, "*/5 * * * *")


def test_apply__job_moving_engines_leaves_one_and_joins_the_other() -> None:
    """A time zone pg_cron 1.4 cannot honour moves a job to Celery in the same apply."""
    reconcile.apply(placed_from(BASE))
    moved = placed_from(
        BASE.replace(
            'schedule: "0 23 * * *"\n    sql: VACUUM ANALYZE',
            'schedule: "0 23 * * *"\n    timezone: America/New_York\n    sql: VACUUM ANALYZE',
        )
    )
    [change] = reconcile.plan(moved).of("update")
    assert change.diff["target"] == {"from": "pg_cron", "to": "celery"}
    reconcile.apply(moved)
    assert "vacuum-analyze" not in cron_jobs()
    task = PeriodicTask.objects.get(name="vacuum-analyze")
    assert task.crontab.hour == "23"
    assert ManagedJob.objects.get(name="vacuum-analyze").engine == "celery"


def test_apply__prune_deletes_only_when_asked() -> None:
    """A job gone from the manifest is planned as a delete; apply keeps it without --prune
    and removes it (engine and registry) with it."""
    reconcile.apply(placed_from(BASE))
    shorter = placed_from(BASE.split("  ping-hourly:")[0])
    assert [c.name for c in reconcile.plan(shorter).of("delete")] == [
        "berlin-report", "ping-hourly",
    ]  # fmt: skip
    outcome = reconcile.apply(shorter)
    assert outcome.summary()["delete_skipped"] == 2
    assert PeriodicTask.objects.filter(name="ping-hourly").exists()
    reconcile.apply(shorter, prune=True)
    assert not PeriodicTask.objects.filter(name__in=["ping-hourly", "berlin-report"]).exists()
    assert set(ManagedJob.objects.values_list("name", flat=True)) == {
        "vacuum-analyze", "purge-old",
    }  # fmt: skip


def test_plan__hand_made_job_with_the_same_name_is_refused_and_untouched() -> None:
    """pg_cron upserts by name: a manifest job named like a hand-made pg_cron job is an error
    located at the job, and the hand-made job keeps its schedule and command."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT cron.schedule('purge-old', '0 1 * * *', 'SELECT 1')")
    with pytest.raises(PlanRefused) as caught:
        reconcile.apply(placed_from(BASE))
    assert str(caught.value).startswith("jobs.yaml:")
    [error] = caught.value.errors
    assert error.job == "purge-old"
    assert error.field == "name"
    assert "was not created by the orchestrator" in error.message
    assert cron_jobs()["purge-old"][1:3] == ("0 1 * * *", "SELECT 1")
    assert not ManagedJob.objects.exists()


def test_plan__hand_made_jobs_are_listed_as_unmanaged() -> None:
    """Jobs made by hand in either engine show in the plan as unmanaged, never as deletes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT cron.schedule('by-hand', '0 1 * * *', 'SELECT 1')")
    PeriodicTask.objects.create(
        name="by-hand-task",
        task="orchestrator.ping",
        interval=__import__("django_celery_beat.models").models.IntervalSchedule.objects.create(
            every=60, period="seconds"
        ),
    )
    plan = reconcile.plan(placed_from(BASE))
    assert {job.name for job in plan.unmanaged} == {"by-hand", "by-hand-task"}
    assert not plan.of("delete")


def test_plan__edit_in_beat_admin_shows_as_drift_and_apply_restores_it() -> None:
    """A definition edited outside the manifest (here: the task's kwargs) is drift; apply
    puts the manifest's definition back."""
    reconcile.apply(placed_from(BASE))
    task = PeriodicTask.objects.get(name="ping-hourly")
    original = task.kwargs
    task.kwargs = '{"name": "ping-hourly", "body": {"kind": "task", "task": "evil"}}'
    task.save()
    [change] = reconcile.plan(placed_from(BASE)).of("drift")
    assert change.name == "ping-hourly"
    assert "kwargs" in change.diff
    reconcile.apply(placed_from(BASE))
    assert PeriodicTask.objects.get(name="ping-hourly").kwargs == original


def test_apply__pause_survives_an_apply_of_a_changed_definition() -> None:
    """Operational state is the admin's: a paused job stays paused through an update."""
    reconcile.apply(placed_from(BASE))
    row = ManagedJob.objects.get(name="purge-old")
    row.paused = True
    row.save()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT orchestrator_cron.alter_job(%s, NULL, NULL, NULL, false)", [int(row.engine_id)]
        )
    reconcile.apply(placed_from(BASE.replace('"*/15 * * * *"', '"*/10 * * * *"')))
    assert cron_jobs()["purge-old"][1] == "*/10 * * * *"
    assert cron_jobs()["purge-old"][3] is False
    assert ManagedJob.objects.get(name="purge-old").paused


def test_apply__failure_in_the_middle_leaves_everything_as_it_was() -> None:
    """A constraint violation on job 4,000 of 5,000 rolls the whole apply back: pg_cron's and
    django-celery-beat's tables and the registry are byte-for-byte what they were."""
    reconcile.apply(placed_from(BASE))
    before = snapshot()
    lines = ["version: 1", "jobs:"]
    for index in range(5000):
        lines += [f"  job-{index:04d}:", '    schedule: "*/5 * * * *"']
        lines.append("    sql: SELECT 1" if index % 2 else "    task: orchestrator.ping")
    placed = placed_from("\n".join(lines) + "\n")
    bad = placed[3999]
    # A name the registry's CHECK constraint refuses (the manifest loader would refuse it too;
    # here it stands for any database-side failure half-way through the writes).
    from dataclasses import replace

    placed[3999] = replace(bad, spec=replace(bad.spec, name="Job 4000!"))
    with pytest.raises(Exception, match="managed_job_name_valid"):
        reconcile.apply(placed)
    assert snapshot() == before


def test_apply__hostile_sql_round_trips_byte_identical() -> None:
    """Quotes, dollar quotes, backslashes, comments and a 1 MB body reach cron.job.command
    exactly as written, and a canary table is untouched."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS canary (id int)")
        cursor.execute("INSERT INTO canary VALUES (1)")
    bodies = {
        "quotes": "SELECT 'it''s', \"canary\".id FROM canary",
        "dollars": "SELECT $$ DROP TABLE canary; $$, $tag$ ' \" $$ $tag$",
        "backslash": "SELECT E'\\\\ \\n', '\\'",
        "comment": "SELECT 1 ;-- DROP TABLE canary",
        "huge": "SELECT '" + "x" * (1024 * 1024) + "'",
    }
    from tests.integration.reconcile_helpers import placed_from as place

    placed = []
    for name, sql in bodies.items():
        manifest = f"version: 1\njobs:\n  {name}:\n    schedule: '0 3 * * *'\n    sql: |-\n"
        manifest += "".join(f"      {line}\n" for line in sql.splitlines())
        placed += place(manifest)
    reconcile.apply(placed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT jobname, command FROM cron.job")
        stored = dict(cursor.fetchall())
        cursor.execute("SELECT id FROM canary")
        assert cursor.fetchall() == [(1,)]
    assert stored == bodies


def test_plan__unknown_database_alias_is_refused_before_anything_runs() -> None:
    """A manifest naming a database alias Django does not know is a located error."""
    with pytest.raises(OrchestratorError) as caught:
        placed_from(BASE.replace("sql: VACUUM ANALYZE", "sql: VACUUM ANALYZE\n    database: other"))
    assert "database" in str(caught.value)
