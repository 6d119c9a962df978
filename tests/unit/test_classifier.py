"""The classifier, table-driven: schedules, time zones, SQL shapes, bodies, options, databases.

Every case asserts the target and its reasons: the reasons listed must all be there, and the
deciding ones (why not the other engine, what was not verified) must be exactly those listed.
Cases that no engine can honour assert the exact located error instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from orchestrator.classifier import Placement, classify, classify_all
from orchestrator.engines.pg_cron.capabilities import Capabilities
from orchestrator.errors import ManifestInvalid
from tests.unit.conftest import engines, job_yaml, load, pg_cron_14

PG14 = pg_cron_14()
PG15_BERLIN = pg_cron_14(version=(1, 5, 2), cron_timezone="Europe/Berlin")
NO_PG_CRON = Capabilities.without_pg_cron()
ELSEWHERE_OK = pg_cron_14(can_schedule_in_database=True)
NO_CONNECT = pg_cron_14(connectable_databases=frozenset({"app"}))
NOT_LOOKED_UP = pg_cron_14(catalog_complete=False)

DECIDING = (
    "Not pg_cron: ",
    "Not pg_cron anyway: ",
    "Not verified: ",
    "Celery could not run it exactly: ",
)
SQL_TASK = "Celery runs the SQL with a task, as one transaction."
GMT_ONLY = "Not pg_cron: pg_cron 1.4 runs schedules in GMT only; this job asks for {}."


@dataclass(frozen=True)
class Case:
    id: str
    fields: str
    target: str
    reasons: tuple[str, ...] = ()
    caps: Capabilities = PG14


def pg(expr: str, zone: str = "GMT", version: str = "1.4") -> str:
    return f"pg_cron {version} runs it at exactly the declared instants: cron '{expr}' in {zone}."


def beat(schedule: str) -> str:
    return f"Celery beat runs it: {schedule}."


CASES = [
    # ------------------------------------------------------------------ schedules
    Case("cron-daily", "schedule: '0 23 * * *'\nsql: SELECT 1", "pg_cron",
         (pg("0 23 * * *"), "The body is SQL (SELECT) that stays inside the database.")),
    Case("macro-hourly", "schedule: '@hourly'\nsql: SELECT 1", "pg_cron", (pg("@hourly"),)),
    Case("step-minutes", "schedule: '*/15 * * * *'\nsql: SELECT 1", "pg_cron",
         (pg("*/15 * * * *"),)),
    Case("weekday-range", "schedule: '0 9-17 * * mon-fri'\nsql: SELECT 1", "pg_cron",
         (pg("0 9-17 * * mon-fri"),)),
    Case("sunday-as-7", "schedule: '0 0 * * 7'\nsql: SELECT 1", "pg_cron", (pg("0 0 * * 7"),)),
    Case("either-day-rule", "schedule: '0 0 1 * mon'\nsql: SELECT 1", "pg_cron",
         (pg("0 0 1 * mon"),
          "Celery could not run it exactly: Celery's crontab fires only on days matching both "
          "day-of-month ('1') and day-of-week ('mon'), but cron and croniter fire '0 0 1 * mon' "
          "when either matches.")),
    Case("step-without-range", "schedule: '10/5 * * * *'\nsql: SELECT 1", "celery",
         ("Not pg_cron: pg_cron 1.4 refuses a step without a range ('10/5'); write '10-59/5'.",
          SQL_TASK, beat("cron '10,15,20,25,30,35,40,45,50,55 * * * *' in UTC"))),
    Case("descending-range", "schedule: '0 22-2 * * *'\nsql: SELECT 1", "celery",
         ("Not pg_cron: pg_cron 1.4 reads the descending range '22-2' as empty, where croniter "
          "and Celery wrap it around.", beat("cron '0 0,1,2,22,23 * * *' in UTC"))),
    Case("every-30s", "schedule: every 30s\nsql: SELECT 1", "celery",
         ("Not pg_cron: pg_cron 1.4 schedules whole minutes at best; 'every 30s' needs seconds "
          "(pg_cron 1.5 or later).",
          beat("every 30 s, aligned to the clock (multiples since 00:00 UTC)"),
          "Celery's interval schedule would count 'every 30s' from the previous run; our beat "
          "(DueScheduler) keeps it aligned to the clock, at the multiples of 30 s since 00:00 "
          "UTC, as 'every' means on every engine.")),
    Case("every-30s-on-1.5", "schedule: every 30s\nsql: SELECT 1", "celery",
         ("Not pg_cron: pg_cron 1.5's '30 seconds' schedule counts from the job's previous "
          "start, but 'every 30s' is aligned to the clock (the multiples of 30 s since 00:00 "
          "UTC).",), caps=PG15_BERLIN),
    Case("every-5m", "schedule: every 5m\nsql: SELECT 1", "pg_cron", (pg("*/5 * * * *", "UTC"),)),
    Case("every-7m", "schedule: every 7m\nsql: SELECT 1", "celery",
         ("Not pg_cron: 'every 7m' does not divide an hour or a day evenly, so no cron "
          "expression fires at exactly these instants, and pg_cron has only cron schedules.",
          beat("every 420 s, aligned to the clock (multiples since 00:00 UTC)"))),
    Case("every-2h", "schedule: every 2h\nsql: SELECT 1", "pg_cron", (pg("0 */2 * * *", "UTC"),)),
    Case("every-5h", "schedule: every 5h\nsql: SELECT 1", "celery",
         ("Not pg_cron: 'every 5h' does not divide an hour or a day evenly, so no cron "
          "expression fires at exactly these instants, and pg_cron has only cron schedules.",)),
    Case("every-24h", "schedule: every 24h\nsql: SELECT 1", "pg_cron", (pg("0 0 * * *", "UTC"),)),
    Case("one-time", "at: 2030-01-01T03:00:00+00:00\nsql: SELECT 1", "celery",
         ("Not pg_cron: pg_cron has no one-time schedules.",
          beat("once at 2030-01-01T03:00:00+00:00"))),
    Case("startup", "on: startup\nsql: SELECT 1", "celery",
         ("Not pg_cron: pg_cron cannot run a job when the application starts (its @reboot "
          "means the database server's start).", beat("once each time the workers start"))),
    # ------------------------------------------------------------------ time zones
    Case("berlin", "schedule: '0 3 * * *'\ntimezone: Europe/Berlin\nsql: SELECT 1", "celery",
         (GMT_ONLY.format("Europe/Berlin"), SQL_TASK, beat("cron '0 3 * * *' in Europe/Berlin"))),
    Case("etc-utc", "schedule: '0 3 * * *'\ntimezone: Etc/UTC\nsql: SELECT 1", "pg_cron",
         (pg("0 3 * * *"),)),
    Case("gmt", "schedule: '0 3 * * *'\ntimezone: GMT\nsql: SELECT 1", "pg_cron",
         (pg("0 3 * * *"),)),
    Case("kolkata", "schedule: '0 3 * * *'\ntimezone: Asia/Kolkata\nsql: SELECT 1", "celery",
         (GMT_ONLY.format("Asia/Kolkata"), beat("cron '0 3 * * *' in Asia/Kolkata"))),
    Case("new-york-dst-hour", "schedule: '30 1 * * *'\ntimezone: America/New_York\nsql: SELECT 1",
         "celery",
         (GMT_ONLY.format("America/New_York"),
          "On the days America/New_York changes its clocks, runs at local times that are skipped "
          "or repeated (such as 01:30) follow Celery's rule, not croniter's: Celery runs a "
          "skipped time late by the size of the change and a repeated time once, where "
          "croniter runs it at the end of the gap and twice.")),
    Case("interval-ignores-zone", "schedule: every 5m\ntimezone: Europe/Berlin\nsql: SELECT 1",
         "pg_cron",
         (pg("*/5 * * * *", "UTC"),
          "An interval is the same instants in every time zone (Europe/Berlin).")),
    Case("cron-timezone-1.5-match", "schedule: '0 3 * * *'\ntimezone: Europe/Berlin\nsql: SELECT 1",
         "pg_cron", (pg("0 3 * * *", "Europe/Berlin", "1.5"),), caps=PG15_BERLIN),
    Case("cron-timezone-1.5-mismatch", "schedule: '0 3 * * *'\nsql: SELECT 1", "celery",
         ("Not pg_cron: pg_cron 1.5 runs every schedule in cron.timezone (Europe/Berlin); this "
          "job asks for UTC.",), caps=PG15_BERLIN),
    # ------------------------------------------------------------------ SQL shapes
    Case("vacuum", "schedule: '@daily'\nsql: VACUUM ANALYZE", "pg_cron",
         ("The body is SQL (VACUUM) that stays inside the database.",)),
    Case("vacuum-on-celery", "schedule: '@daily'\ntimezone: Europe/Berlin\nsql: VACUUM events",
         "celery",
         (GMT_ONLY.format("Europe/Berlin"),
          "Celery runs the SQL with a task, outside a transaction block as VACUUM requires.")),
    Case("reindex-concurrently", "schedule: '@weekly'\nsql: REINDEX TABLE CONCURRENTLY events",
         "pg_cron", ("The body is SQL (REINDEX CONCURRENTLY) that stays inside the database.",)),
    Case("retention-delete",
         "schedule: '@daily'\n"
         "sql: DELETE FROM events WHERE created_at < now() - interval '30 days'",
         "pg_cron", ("The body is SQL (DELETE) that stays inside the database.",)),
    Case("several-statements", "schedule: '@daily'\nsql: DELETE FROM t; ANALYZE t", "pg_cron",
         ("The body is SQL (DELETE, ANALYZE) that stays inside the database.",)),
    Case("plpgsql-function", "schedule: '@hourly'\nsql: SELECT refresh_metrics()", "pg_cron"),
    Case("sql-function", "schedule: '@hourly'\nsql: SELECT compute_pagerank()", "pg_cron"),
    Case("schema-qualified", "schedule: '@hourly'\nsql: SELECT sql_jobs.prune_events(30)",
         "pg_cron"),
    Case("trusted-plperl", "schedule: '@hourly'\nsql: SELECT perl_report()", "pg_cron"),
    Case("do-block-plpgsql",
         "schedule: '@hourly'\nsql: DO $$ BEGIN PERFORM learn_patterns(); END $$", "pg_cron",
         ("The body is SQL (DO) that stays inside the database.",)),
    Case("untrusted-function", "schedule: '@hourly'\nsql: SELECT fetch_feed()", "celery",
         ("Not pg_cron: fetch_feed() is written in plpython3u, an untrusted language that can "
          "reach outside the database.", SQL_TASK)),
    Case("missing-function", "schedule: '@hourly'\nsql: SELECT no_such_thing()", "celery",
         ("Not pg_cron: no_such_thing() does not exist in database 'app', so it cannot be "
          "checked.",)),
    Case("missing-function-forced",
         "schedule: '@hourly'\ntarget: pg_cron\nsql: SELECT no_such_thing()", "pg_cron",
         ("target: pg_cron was chosen in the manifest.",
          "Not verified: no_such_thing() does not exist in database 'app', so it cannot be "
          "checked.")),
    Case("not-looked-up", "schedule: '@hourly'\nsql: SELECT now()", "celery",
         ("Not pg_cron: now() could not be looked up in pg_catalog, so it may reach outside "
          "the database.",), caps=NOT_LOOKED_UP),
    Case("server-file", "schedule: '@daily'\nsql: SELECT pg_read_file('/etc/hostname')", "celery",
         ("Not pg_cron: the SQL reaches outside the database: pg_read_file() reads the "
          "database server's files.",)),
    Case("copy-program", "schedule: '@daily'\nsql: COPY events TO PROGRAM 'gzip > /tmp/e.gz'",
         "celery",
         ("Not pg_cron: the SQL reaches outside the database: COPY ... TO PROGRAM runs a program "
          "on the database server.",)),
    Case("copy-file", "schedule: '@daily'\nsql: COPY events FROM '/srv/events.csv'", "celery",
         ("Not pg_cron: the SQL reaches outside the database: COPY ... FROM a file uses the "
          "database server's file system.",)),
    Case("dblink", "schedule: '@daily'\nsql: SELECT dblink_exec('host=db', 'VACUUM')", "celery",
         ("Not pg_cron: the SQL reaches outside the database: dblink_exec() connects to another "
          "database (dblink).",)),
    # ------------------------------------------------------------------ bodies and targets
    Case("task", "schedule: '@hourly'\ntask: tasks.backup.backup_database", "celery",
         ("Not pg_cron: the body is a Celery task (tasks.backup.backup_database); pg_cron runs "
          "only SQL.", beat("cron '0 * * * *' in UTC"))),
    Case("command", "schedule: '@daily'\ncommand: pg_dump --format=custom --file=/tmp/x", "celery",
         ("Not pg_cron: the body is a program (pg_dump); commands always run on Celery.",)),
    Case("sql-forced-celery", "schedule: '@daily'\ntarget: celery\nsql: VACUUM", "celery",
         ("target: celery was chosen in the manifest.",
          "pg_cron could also have run it exactly; the manifest chose Celery.")),
    Case("task-forced-celery",
         "schedule: '@daily'\ntarget: celery\ntask: tasks.knowledge.migrate\nretries: {max: 2}",
         "celery",
         ("target: celery was chosen in the manifest.",
          "Not pg_cron anyway: the body is a Celery task (tasks.knowledge.migrate); pg_cron runs "
          "only SQL.",
          "Not pg_cron anyway: pg_cron does not retry a failed run; this job asks for 2 "
          "retries.")),
    Case("sql-forced-pg-cron", "schedule: '@daily'\ntarget: pg_cron\nsql: VACUUM", "pg_cron",
         ("target: pg_cron was chosen in the manifest.",)),
    # ------------------------------------------------------------------ options
    Case("retries", "schedule: '@daily'\nsql: SELECT 1\nretries: {max: 3, backoff: 60}", "celery",
         ("Not pg_cron: pg_cron does not retry a failed run; this job asks for 3 retries.",)),
    Case("timeout", "schedule: '@daily'\nsql: SELECT 1\ntimeout: 15m", "celery",
         ("Not pg_cron: pg_cron has no per-job timeout; this job asks for 900 s (a "
          "statement_timeout would bound each statement, not the job).",)),
    Case("overlap-skip", "schedule: '@daily'\nsql: SELECT 1\noverlap: skip", "celery",
         ("Not pg_cron: pg_cron queues a run that comes due while the previous one is still "
          "running; it does not skip it.",)),
    Case("overlap-allow", "schedule: '@daily'\nsql: SELECT 1\noverlap: allow", "celery",
         ("Not pg_cron: pg_cron never runs two instances of a job at once; this job allows "
          "overlap.",)),
    Case("overlap-buffer-one", "schedule: '@daily'\nsql: SELECT 1\noverlap: buffer_one",
         "celery",
         ("Not pg_cron: pg_cron queues every run that comes due while the previous one is still "
          "running and runs them all back to back; it cannot keep at most one waiting "
          "(buffer_one).",
          "overlap buffer_one: while a run is going, one more run waits for it to end; any "
          "further run that comes due meanwhile is skipped (recorded as skipped, with the "
          "reason).")),
    Case("overlap-cancel-other", "schedule: '@daily'\nsql: SELECT 1\noverlap: cancel_other",
         "celery",
         ("Not pg_cron: pg_cron never cancels a running job when the next run comes due; it "
          "queues the new run behind it (cancel_other asks for the opposite).",)),
    Case("notify", "schedule: '@daily'\nsql: SELECT 1\nnotify: {email: ops@example.com}",
         "celery",
         ("Not pg_cron: pg_cron's runs reach the run history through a SQL importer, which "
          "sends no notifications; this job asks to notify failed for good, missed, recovered.",
          "notify on failed for good, missed, recovered: e-mail to ops@example.com (sent by a "
          "Celery task of its own).")),
    Case("max-runs", "schedule: '@daily'\nsql: SELECT 1\nmax_runs: 3", "celery",
         ("Not pg_cron: pg_cron cannot stop a job after 3 runs.",)),
    Case("expires", "schedule: '@daily'\nsql: SELECT 1\nexpires: 2030-01-01T00:00:00Z", "celery",
         ("Not pg_cron: pg_cron cannot stop a job at an expiry time.",)),
    Case("disabled", "schedule: '@daily'\nsql: SELECT 1\nenabled: false", "pg_cron"),
    Case("queue-is-irrelevant", "schedule: '@daily'\nsql: SELECT 1\nqueue: maintenance", "pg_cron"),
    Case("several-blockers",
         "schedule: '0 3 * * *'\ntimezone: Europe/Berlin\ntask: tasks.knowledge.migrate\n"
         "timeout: 1h", "celery",
         ("Not pg_cron: the body is a Celery task (tasks.knowledge.migrate); pg_cron runs only "
          "SQL.", GMT_ONLY.format("Europe/Berlin"),
          "Not pg_cron: pg_cron has no per-job timeout; this job asks for 3600 s (a "
          "statement_timeout would bound each statement, not the job).")),
    # ------------------------------------------------------------------ databases
    Case("other-database", "schedule: '@daily'\nsql: SELECT 1\ndatabase: analytics", "celery",
         ("Not pg_cron: pg_cron 1.4 lives in 'app' and this role may not call "
          "orchestrator_cron.schedule to run jobs in 'analytics' (scripts/jobs_role.sql).",)),
    Case("other-database-allowed", "schedule: '@daily'\nsql: SELECT 1\ndatabase: analytics",
         "pg_cron", caps=ELSEWHERE_OK),
    Case("other-server", "schedule: '@daily'\nsql: SELECT 1\ndatabase: remote", "celery",
         ("Not pg_cron: the database alias 'remote' is not on pg_cron's server.",)),
    Case("no-connect", "schedule: '@daily'\nsql: SELECT 1\ndatabase: analytics", "celery",
         ("Not pg_cron: the role may not connect to database 'analytics'.",
          "Not pg_cron: pg_cron 1.4 lives in 'app' and this role may not call "
          "orchestrator_cron.schedule to run jobs in 'analytics' (scripts/jobs_role.sql)."),
         caps=NO_CONNECT),
    # ------------------------------------------------------------------ capabilities
    Case("no-pg-cron", "schedule: '@daily'\nsql: VACUUM", "celery",
         ("Not pg_cron: pg_cron is not installed in database 'app'.",
          "Celery runs the SQL with a task, outside a transaction block as VACUUM requires."),
         caps=NO_PG_CRON),
    Case("no-pg-cron-zone-unjudged",
         "schedule: '0 3 * * *'\ntimezone: Europe/Berlin\nsql: SELECT 1",
         "celery", ("Not pg_cron: pg_cron is not installed in database 'app'.",), caps=NO_PG_CRON),
    Case("no-pg-cron-startup", "on: startup\nsql: SELECT 1", "celery",
         ("Not pg_cron: pg_cron is not installed in database 'app'.",
          "Not pg_cron: pg_cron cannot run a job when the application starts (its @reboot "
          "means the database server's start)."), caps=NO_PG_CRON),
]  # fmt: skip


def place(case_fields: str, caps: Capabilities) -> Placement:
    return classify(load(job_yaml(case_fields)).jobs[0], engines(caps))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_classify__table(case: Case) -> None:
    """The target, every reason listed, and exactly the deciding reasons listed."""
    placement = place(case.fields, case.caps)
    assert placement.target == case.target, placement.reasons
    for reason in case.reasons:
        assert reason in placement.reasons
    deciding = [r for r in placement.reasons if r.startswith(DECIDING)]
    assert deciding == [r for r in case.reasons if r.startswith(DECIDING)]


ERRORS = [
    ("either-day-rule-no-engine", "schedule: '0 0 */2 * 1'\nsql: SELECT 1", PG14,
     "jobs.yaml:4: job 'job': schedule: no engine can run this job exactly: Celery's crontab "
     "fires only on days matching both day-of-month ('*/2') and day-of-week ('1'), but cron and "
     "croniter fire '0 0 */2 * 1' when either matches. And pg_cron: pg_cron 1.4 (Vixie cron) "
     "treats a day field starting with '*' as unrestricted and then requires both day fields to "
     "match, so it reads '0 0 */2 * 1' on different days than cron and croniter, which fire "
     "when either day field matches."),
    ("either-day-rule-without-pg-cron", "schedule: '0 0 1 * mon'\nsql: SELECT 1", NO_PG_CRON,
     "jobs.yaml:4: job 'job': schedule: no engine can run this job exactly: Celery's crontab "
     "fires only on days matching both day-of-month ('1') and day-of-week ('mon'), but cron and "
     "croniter fire '0 0 1 * mon' when either matches. And pg_cron: pg_cron is not installed in "
     "database 'app'."),
    ("either-day-rule-forced-celery", "schedule: '0 0 1 * mon'\ntarget: celery\nsql: SELECT 1",
     PG14,
     "jobs.yaml:4: job 'job': schedule: target celery cannot run this job: Celery's crontab "
     "fires only on days matching both day-of-month ('1') and day-of-week ('mon'), but cron and "
     "croniter fire '0 0 1 * mon' when either matches."),
    ("forced-pg-cron-berlin",
     "schedule: '0 3 * * *'\ntarget: pg_cron\ntimezone: Europe/Berlin\nsql: SELECT 1", PG14,
     "jobs.yaml:6: job 'job': timezone: target pg_cron cannot run this job: pg_cron 1.4 runs "
     "schedules in GMT only; this job asks for Europe/Berlin."),
    ("forced-pg-cron-task", "schedule: '@daily'\ntarget: pg_cron\ntask: tasks.knowledge.migrate",
     PG14,
     "jobs.yaml:6: job 'job': task: target pg_cron cannot run this job: the body is a Celery "
     "task (tasks.knowledge.migrate); pg_cron runs only SQL."),
    ("forced-pg-cron-command", "schedule: '@daily'\ntarget: pg_cron\ncommand: pg_dump", PG14,
     "jobs.yaml:6: job 'job': command: target pg_cron cannot run this job: the body is a "
     "program (pg_dump); commands always run on Celery."),
    ("forced-pg-cron-copy-program",
     "schedule: '@daily'\ntarget: pg_cron\nsql: COPY t TO PROGRAM 'cat'", PG14,
     "jobs.yaml:6: job 'job': sql: target pg_cron cannot run this job: the SQL reaches outside "
     "the database: COPY ... TO PROGRAM runs a program on the database server."),
    ("forced-pg-cron-one-time", "at: 2030-01-01T00:00:00Z\ntarget: pg_cron\nsql: SELECT 1", PG14,
     "jobs.yaml:4: job 'job': at: target pg_cron cannot run this job: pg_cron has no one-time "
     "schedules."),
    ("forced-pg-cron-missing", "schedule: '@daily'\ntarget: pg_cron\nsql: SELECT 1", NO_PG_CRON,
     "jobs.yaml:5: job 'job': target: target pg_cron cannot run this job: pg_cron is not "
     "installed in database 'app'."),
    ("forced-pg-cron-cancel-other",
     "schedule: '@daily'\ntarget: pg_cron\noverlap: cancel_other\nsql: SELECT 1", PG14,
     "jobs.yaml:6: job 'job': overlap: target pg_cron cannot run this job: pg_cron never cancels "
     "a running job when the next run comes due; it queues the new run behind it (cancel_other "
     "asks for the opposite)."),
    ("forced-pg-cron-every-7m", "schedule: every 7m\ntarget: pg_cron\nsql: SELECT 1", PG14,
     "jobs.yaml:4: job 'job': schedule: target pg_cron cannot run this job: 'every 7m' does not "
     "divide an hour or a day evenly, so no cron expression fires at exactly these instants, "
     "and pg_cron has only cron schedules."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "caps", "error"), [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS]
)
def test_classify__located_errors(fields: str, caps: Capabilities, error: str) -> None:
    """A job no engine (or not the chosen engine) can run exactly: one located error."""
    with pytest.raises(ManifestInvalid) as caught:
        place(fields, caps)
    assert [str(e) for e in caught.value.errors] == [error]


def test_classify__explicit_target_lists_every_refusal() -> None:
    """Each thing pg_cron cannot honour is its own error, at its own field's line."""
    fields = "schedule: '@daily'\ntarget: pg_cron\nsql: SELECT 1\nretries: {max: 1}\ntimeout: 5"
    with pytest.raises(ManifestInvalid) as caught:
        place(fields, PG14)
    assert [str(e) for e in caught.value.errors] == [
        "jobs.yaml:7: job 'job': retries: target pg_cron cannot run this job: pg_cron does not "
        "retry a failed run; this job asks for 1 retries.",
        "jobs.yaml:8: job 'job': timeout: target pg_cron cannot run this job: pg_cron has no "
        "per-job timeout; this job asks for 5 s (a statement_timeout would bound each "
        "statement, not the job).",
    ]


def test_classify__inherited_zone_points_at_defaults() -> None:
    """A time zone from defaults that pg_cron cannot honour is reported at the defaults line."""
    manifest = load(
        """\
        version: 1
        defaults:
          timezone: Europe/Berlin
        jobs:
          job: {schedule: '@daily', target: pg_cron, sql: SELECT 1}
        """
    )
    with pytest.raises(ManifestInvalid) as caught:
        classify(manifest.jobs[0], engines(PG14))
    assert [str(e) for e in caught.value.errors] == [
        "jobs.yaml:3: job 'job': timezone: target pg_cron cannot run this job: pg_cron 1.4 runs "
        "schedules in GMT only; this job asks for Europe/Berlin."
    ]


def test_classify_all__collects_errors_and_placements() -> None:
    """Every job is placed or reported; one bad job does not hide the others."""
    manifest = load(
        """\
        version: 1
        jobs:
          good: {schedule: '@daily', sql: VACUUM}
          bad: {schedule: '@daily', target: pg_cron, task: tasks.knowledge.migrate}
          also-good: {on: startup, task: tasks.knowledge.migrate}
        """
    )
    placements, errors = classify_all(manifest, engines(PG14))
    assert {name: p.target for name, p in placements.items()} == {
        "good": "pg_cron",
        "also-good": "celery",
    }
    assert [e.job for e in errors] == ["bad"]


def test_classify__placement_schedule_for_engines() -> None:
    """The placement carries what the engine is given: cron text and the zone it runs in."""
    placement = place("schedule: '0 0 * * 5-7'\ntimezone: Europe/Berlin\nsql: SELECT 1", PG14)
    assert (placement.target, placement.cron, placement.schedule.timezone) == (
        "celery",
        "0 0 * * 0,5,6",
        "Europe/Berlin",
    )


def test_capabilities__versions_and_lookups() -> None:
    """What each pg_cron version offers, and the three answers of a catalog lookup."""
    assert (PG14.supports_seconds, PG14.supports_timezone, PG14.supports_last_day) == (
        False,
        False,
        False,
    )
    newer = pg_cron_14(version=(1, 6, 4))
    assert (newer.supports_seconds, newer.supports_timezone, newer.supports_last_day) == (
        True,
        True,
        True,
    )
    assert (PG14.pg_cron_label, NO_PG_CRON.pg_cron_label) == ("pg_cron 1.4", "pg_cron")
    assert NOT_LOOKED_UP.functions_named(None, "now") is None  # never asked
    assert PG14.functions_named(None, "no_such") == ()  # asked, absent
    assert PG14.functions_named("sql_jobs", "prune_events")  # asked, found in that schema
    assert PG14.functions_named("other", "prune_events") == ()
