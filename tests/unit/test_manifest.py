"""Loading and validating manifests: typed specs, located errors, hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ManifestInvalid
from orchestrator.manifest import load_manifest
from orchestrator.specs import (
    CommandBody,
    Cron,
    Every,
    JsonObject,
    Retries,
    SqlBody,
    Startup,
    TaskBody,
)
from tests.unit.conftest import DESIGN_EXAMPLE, job_yaml, load


def errors_of(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ManifestInvalid) as caught:
        load(text, **kwargs)
    return [str(error) for error in caught.value.errors]


def test_load__design_example() -> None:
    """The manifest of DESIGN.md loads into typed specs, defaults merged in."""
    manifest = load(DESIGN_EXAMPLE)
    assert manifest.names == ("vacuum-analyze", "hourly-backup", "knowledge-migration")
    vacuum, backup, migration = manifest.jobs
    assert vacuum.trigger == Cron(expr="0 23 * * *", source="0 23 * * *")
    assert vacuum.body == SqlBody(sql="VACUUM ANALYZE")
    assert (vacuum.timezone, vacuum.queue, vacuum.description) == (
        "UTC",
        "default",
        "Optimize the query planner",
    )
    assert backup.body == TaskBody(task="tasks.backup.backup_database")
    assert backup.kwargs == JsonObject((("kind", "hourly"),))
    assert backup.retries == Retries(max=3, backoff=60)
    assert backup.timeout == 900
    assert migration.trigger == Startup()
    assert (vacuum.path, vacuum.line) == ("jobs.yaml", 6)


def test_load__inherited_fields_point_at_defaults() -> None:
    """A value from defaults keeps the line of defaults; the job's own fields keep theirs."""
    vacuum = load(DESIGN_EXAMPLE).jobs[0]
    assert vacuum.line_of("timezone") == 3
    assert vacuum.line_of("queue") == 4
    assert vacuum.line_of("schedule") == 7
    assert vacuum.line_of("retries") == 6  # never set: the job's own line


def test_load__job_value_replaces_default() -> None:
    """A job's own value wins over the default, lists included (no merging)."""
    manifest = load(
        """\
        version: 1
        defaults: {timezone: Europe/Berlin, tags: [nightly]}
        jobs:
          a: {schedule: '@daily', sql: SELECT 1, timezone: UTC, tags: [hourly]}
          b: {schedule: '@daily', sql: SELECT 1}
        """
    )
    a, b = manifest.jobs
    assert (a.timezone, a.tags) == ("UTC", ("hourly",))
    assert (b.timezone, b.tags) == ("Europe/Berlin", ("nightly",))


@pytest.mark.parametrize(
    ("fields", "body"),
    [
        ("command: pg_dump --format=custom --file='/backups/app dump.pgc'",
         CommandBody(argv=("pg_dump", "--format=custom", "--file=/backups/app dump.pgc"))),
        ("command: [pg_dump, --format=custom]", CommandBody(argv=("pg_dump", "--format=custom"))),
        ("task: tasks.knowledge.migrate", TaskBody(task="tasks.knowledge.migrate")),
        ("sql: |\n  DELETE FROM t;\n  ANALYZE t;", SqlBody(sql="DELETE FROM t;\nANALYZE t;\n")),
    ],
)  # fmt: skip
def test_load__bodies(fields: str, body: object) -> None:
    """Commands are split like a shell would (or given as a list); SQL is kept as written."""
    assert load(job_yaml(f"on: startup\n{fields}")).jobs[0].body == body


def test_load__every_and_on_startup_keys() -> None:
    """'on' stays the key 'on' (YAML 1.1 would make it a boolean); 'every' is seconds."""
    manifest = load(
        """\
        version: 1
        jobs:
          a: {on: startup, task: tasks.knowledge.migrate}
          b: {schedule: every 90s, task: tasks.knowledge.migrate}
        """
    )
    assert [job.trigger for job in manifest.jobs] == [Startup(), Every(seconds=90)]


def test_load__retries_zero_is_none_and_null_jobs_is_empty() -> None:
    """'max: 0' means no retries; 'jobs:' with nothing under it is a valid, empty manifest."""
    spec = load(job_yaml("schedule: '@daily'\nsql: SELECT 1\nretries: {max: 0}")).jobs[0]
    assert spec.retries is None
    assert len(load("version: 1\njobs:\n")) == 0


def test_load__unknown_tasks_pass_without_a_registry() -> None:
    """With no task registry given, task names are only checked for shape."""
    spec = load(job_yaml("on: startup\ntask: anything.at_all"), tasks=None).jobs[0]
    assert spec.body == TaskBody(task="anything.at_all")


def test_load__from_file_and_missing_file(tmp_path: Path) -> None:
    """load_manifest reads a path; a missing file is a located error, not a traceback."""
    path = tmp_path / "jobs.yaml"
    path.write_text(DESIGN_EXAMPLE)
    assert len(load_manifest(path)) == 3
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(tmp_path / "absent.yaml")
    assert str(caught.value) == (
        f"{tmp_path / 'absent.yaml'}:1: cannot read the manifest: No such file or directory"
    )


# --------------------------------------------------------------------------- located errors


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ("schedul: '@daily'\nsql: SELECT 1", [
            "jobs.yaml:3: job 'job': trigger: a job needs one trigger: schedule, at or 'on: "
            "startup'",
            "jobs.yaml:4: job 'job': schedul: unknown field (did you mean 'schedule'?)"]),
        ("schedule: '@daily'", [
            "jobs.yaml:3: job 'job': body: a job needs one body: sql, task or command"]),
        ("schedule: '@daily'\nsql: SELECT 1\ntask: tasks.knowledge.migrate", [
            "jobs.yaml:6: job 'job': task: a job has exactly one body, and this one already has "
            "'sql'"]),
        ("schedule: '@daily'\non: startup\nsql: SELECT 1", [
            "jobs.yaml:5: job 'job': on: a job has exactly one trigger, and this one already has "
            "'schedule'"]),
        ("schedule: '@daily'\nsql: SELECT 1\nsql: SELECT 2", [
            "jobs.yaml:6: job 'job': sql: duplicate key 'sql' (first at line 5)"]),
        ("schedule: '@daily'\nsql: SELECT 1\ntimezone: Mars/Olympus_Mons", [
            "jobs.yaml:6: job 'job': timezone: unknown time zone 'Mars/Olympus_Mons' (use an IANA "
            "name like Europe/Berlin)"]),
        ("schedule: '@daily'\nsql: SELECT 1\ntimeout: 15 minutes", [
            "jobs.yaml:6: job 'job': timeout: cannot read '15 minutes' as a duration: write 30s, "
            "15m, 2h, 1d or seconds"]),
        ("schedule: '@daily'\nsql: SELECT 1\ntimeout: 0", [
            "jobs.yaml:6: job 'job': timeout: the duration must be positive"]),
        ("schedule: '@daily'\nsql: SELECT 1\ntarget: cron", [
            "jobs.yaml:6: job 'job': target: must be one of auto, pg_cron, celery, got 'cron'"]),
        ("schedule: '@daily'\nsql: SELECT 1\noverlap: queue", [
            "jobs.yaml:6: job 'job': overlap: must be one of skip, allow, buffer_one, "
            "cancel_other, got 'queue'"]),
        ("schedule: '@daily'\ntask: tasks.knowledge.migrate\nretries: {max: 3, backof: 60}", [
            "jobs.yaml:6: job 'job': retries: unknown field 'backof' (did you mean 'backoff'?); "
            "retries take max and backoff"]),
        ("schedule: '@daily'\ntask: tasks.knowledge.migrate\nretries:\n  max: -1", [
            "jobs.yaml:7: job 'job': retries.max: must be at least 0 and at most 100, got -1"]),
        ("schedule: '@daily'\ntask: tasks.backup.backup_databse", [
            "jobs.yaml:5: job 'job': task: no task 'tasks.backup.backup_databse' is registered in "
            "the Celery app (did you mean 'tasks.backup.backup_database'?)"]),
        ("schedule: '@daily'\nsql: |\n  SELECT 1;\n  DELETE FROM t\n  WHER id = 1;", [
            "jobs.yaml:8: job 'job': sql: invalid SQL: syntax error at or near \"id\""]),
        ("schedule: '@daily'\nsql: |\n  DELETE FROM t;\n  SET ROLE admin;", [
            "jobs.yaml:7: job 'job': sql: SET ROLE is refused: a job runs as the jobs role, "
            "with only the privileges granted to it, and must not change roles"]),
        ("schedule: '@daily'\nsql: |\n  DELETE FROM t;\n  VACUUM t;", [
            "jobs.yaml:7: job 'job': sql: VACUUM cannot run inside a transaction block, and a "
            "body of several statements runs as one transaction; give it a job of its own"]),
        ("schedule: '@daily'\nsql: SELECT 1\nargs: [1, 2]", [
            "jobs.yaml:6: job 'job': args: args only apply to a task body"]),
        ("schedule: '@daily'\nsql: SELECT 1\nenabled: 'yes'", [
            "jobs.yaml:6: job 'job': enabled: expected true or false, got a string"]),
        ("schedule: '@daily'\nsql: SELECT 1\ndescription: 42", [
            "jobs.yaml:6: job 'job': description: expected a string, got an integer"]),
        ("on: startup\ntask: tasks.knowledge.migrate\nkwargs: {day: 2025-01-01}", [
            "jobs.yaml:6: job 'job': kwargs: '2025-01-01' is a date/time to YAML, which JSON "
            "cannot carry; quote it"]),
        ("on: startup\ncommand: pg_dump 'unclosed", [
            "jobs.yaml:5: job 'job': command: cannot split the command line: "
            "No closing quotation"]),
        ("at: 2025-06-01T03:00:00\ntask: tasks.knowledge.migrate", [
            "jobs.yaml:4: job 'job': at: '2025-06-01T03:00:00' has no UTC offset; write it with "
            "one, e.g. 2025-06-01T03:00:00+00:00"]),
        ("on: shutdown\ntask: tasks.knowledge.migrate", [
            "jobs.yaml:4: job 'job': on: the only event is 'startup', got 'shutdown'"]),
        ("schedule: '@daily'\nsql: SELECT 1\ndatabase: warehouse", [
            "jobs.yaml:6: job 'job': database: no database alias 'warehouse' in DATABASES (known: "
            "analytics, default, remote)"]),
        ("schedule: '@daily'\ntask: tasks.knowledge.migrate\nmax_runs: 0", [
            "jobs.yaml:6: job 'job': max_runs: must be at least 1 and at most 2147483647, got 0"]),
        ("schedule: '@daily'\ntask: tasks.knowledge.migrate\ntags: nightly", [
            "jobs.yaml:6: job 'job': tags: expected a list of strings, got a string"]),
        ("schedule: '0 0 * * 8'\nsql: SELECT 1", [
            "jobs.yaml:4: job 'job': schedule: day-of-week: 8 is out of range 0-7"]),
        ("schedule: [0, 0]\nsql: SELECT 1", [
            "jobs.yaml:4: job 'job': schedule: expected a cron expression or 'every N', "
            "got a list"]),
    ],
)  # fmt: skip
def test_load__located_errors(fields: str, errors: list[str]) -> None:
    """Each mistake is reported as PATH:LINE: job 'NAME': FIELD: message, at its own line."""
    assert errors_of(job_yaml(fields)) == errors


def test_load__all_errors_in_one_pass() -> None:
    """Errors of different jobs and fields are all collected, sorted by line."""
    text = """\
    version: 1
    jobs:
      Bad_Name: {schedule: '@daily', sql: SELECT 1}
      ok: {schedule: '@daily', sql: SELECT 1}
      two: {schedule: '61 * * * *', sql: SELEC 1, timezone: Nowhere/City}
      ok: {schedule: '@daily', sql: SELECT 1}
    """
    assert errors_of(text) == [
        "jobs.yaml:3: job 'Bad_Name': name: job names are 1 to 63 lower-case letters, digits, "
        "'-', '_' or '.', starting with a letter or digit",
        "jobs.yaml:5: job 'two': schedule: minute: 61 is out of range 0-59",
        "jobs.yaml:5: job 'two': sql: invalid SQL: syntax error at or near \"SELEC\"",
        "jobs.yaml:5: job 'two': timezone: unknown time zone 'Nowhere/City' (use an IANA name "
        "like Europe/Berlin)",
        "jobs.yaml:6: job 'ok': name: the job is defined twice (first at line 4)",
    ]


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        ("jobs: {}\n", ["jobs.yaml:1: version: the manifest needs 'version: 1'"]),
        ("version: 2\njobs: {}\n",
         ["jobs.yaml:1: version: unsupported manifest version 2; this release reads version 1"]),
        ("version: 1\n", ["jobs.yaml:1: jobs: the manifest has no 'jobs'"]),
        ("version: 1\njobs: {}\nversion: 1\n",
         ["jobs.yaml:3: version: duplicate key 'version' (first at line 1)"]),
        ("version: 1\njob: {}\njobs: {}\n",
         ["jobs.yaml:2: job: unknown top-level key 'job' (did you mean 'jobs'?)"]),
        ("version: 1\ndefaults: {sql: SELECT 1}\njobs: {}\n",
         ["jobs.yaml:2: defaults.sql: 'sql' cannot be set in defaults; set it on each job"]),
        ("version: 1\ndefaults:\n  timezone: Nowhere\njobs: {}\n",
         ["jobs.yaml:3: defaults.timezone: unknown time zone 'Nowhere' (use an IANA name like "
          "Europe/Berlin)"]),
        ("version: 1\ndefaults: {colour: red}\njobs: {}\n",
         ["jobs.yaml:2: defaults.colour: unknown field"]),
        ("version: 1\njobs: [a, b]\n",
         ["jobs.yaml:2: jobs: expected a mapping of job names to jobs, got a list"]),
        ("version: 1\njobs:\n  a: SELECT 1\n",
         ["jobs.yaml:3: job 'a': expected a mapping of fields, got a string"]),
    ],
)  # fmt: skip
def test_load__top_level_errors(text: str, errors: list[str]) -> None:
    """Structure errors name the key; errors in defaults are reported once, at defaults."""
    assert errors_of(text) == errors
