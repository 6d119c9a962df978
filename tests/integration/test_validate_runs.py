"""Validate means it runs: what ``jobs validate`` accepts applies, ticks and plans clean; what it
refuses changes nothing. Regression tests for the cases of issue 12, on the real services."""

from __future__ import annotations

import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django_celery_beat.models import ClockedSchedule, PeriodicTask

from orchestrator import desired, reconcile
from orchestrator.errors import ManifestInvalid
from orchestrator.models import JobRun, ManagedJob, RunStatus
from tests.integration.reconcile_helpers import clear_engines
from tests.integration.validate_helpers import jobs, snapshot, tick_beat

pytestmark = pytest.mark.django_db

SOON = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)


@pytest.fixture(autouse=True)
def empty_engines() -> None:
    clear_engines()


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "jobs.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def assert_applies_and_plans_clean(path: str) -> None:
    """validate OK, apply OK, a beat tick reads every entry, and ``plan --check`` exits 0."""
    status, _, stderr = jobs("validate", "--manifest", path)
    assert status == 0, stderr
    status, _, stderr = jobs("apply", "--manifest", path, "--yes", "--prune")
    assert status == 0, stderr
    tick_beat()
    status, stdout, stderr = jobs("plan", "--manifest", path, "--check")
    assert (status, stderr) == (0, ""), stdout


def assert_refused_changing_nothing(path: str, *expected: str) -> None:
    """validate exits 1 with exactly these located lines; apply refuses too; no row changed."""
    before = snapshot()
    status, _, stderr = jobs("validate", "--manifest", path)
    assert status == 1
    assert stderr.splitlines()[:-1] == list(expected)
    status, _, stderr = jobs("apply", "--manifest", path, "--yes", "--prune")
    assert status == 1
    assert snapshot() == before


# --------------------------------------------------------------------------- dates


def test_validate__extreme_instants_refused_with_their_lines(tmp_path: Path) -> None:
    """An ``at`` in year 1 at +14:00 (year 0 in UTC) and an ``expires`` on 9999-12-31 at -14:00
    (year 10000 in UTC) once passed validate and killed beat; now each is a located error and
    nothing is applied."""
    path = write(
        tmp_path,
        """\
        version: 1
        jobs:
          old:
            at: '0001-01-01T00:00:00+14:00'
            task: orchestrator.ping
          late:
            schedule: "@hourly"
            task: orchestrator.ping
            expires: '9999-12-31T23:59:59-14:00'
        """,
    )
    limits = (
        "is outside the instants every engine can hold (1970-01-01 to 9999-01-01 UTC, exclusive)"
    )
    assert_refused_changing_nothing(
        path,
        f"{path}:4: job 'old': at: '0001-01-01T00:00:00+14:00' {limits}",
        f"{path}:9: job 'late': expires: '9999-12-31T23:59:59-14:00' {limits}",
    )


def test_apply__latest_instants_tick_and_plan_clean(tmp_path: Path) -> None:
    """The latest instants accepted, written at the extreme offsets, apply; beat reads them
    without overflowing and the plan is clean."""
    path = write(
        tmp_path,
        """\
        version: 1
        jobs:
          last-once:
            at: '9998-12-31T09:59:59.999999-14:00'
            task: orchestrator.ping
          last-expiry:
            schedule: "@hourly"
            task: orchestrator.ping
            expires: '9999-01-01T13:59:59.999999+14:00'
        """,
    )
    assert_applies_and_plans_clean(path)
    clock = ClockedSchedule.objects.get(periodictask__name="last-once")
    assert clock.clocked_time == datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_validate__past_instants_refused(tmp_path: Path) -> None:
    """An ``at`` or ``expires`` in the past would fire at once (or never): refused, with the
    line, the instant and the clock it was measured against."""
    now = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    text = """\
    version: 1
    jobs:
      once:
        at: '2030-06-01T13:00:00+02:00'
        task: orchestrator.ping
      ends:
        schedule: "@daily"
        task: orchestrator.ping
        expires: '2030-05-31T00:00:00Z'
    """
    with pytest.raises(ManifestInvalid) as refused:
        desired.load_text(textwrap.dedent(text), path="jobs.yaml", now=now)
    assert [str(error) for error in refused.value.errors] == [
        "jobs.yaml:4: job 'once': at: 2030-06-01T11:00:00+00:00 is in the past (now "
        "2030-06-01T12:00:00+00:00); a one-time job must be in the future, or apply would run "
        "it at once. A job that already ran at this instant stays accepted; to run it again, "
        "give it a new time",
        "jobs.yaml:9: job 'ends': expires: 2030-05-31T00:00:00+00:00 is in the past (now "
        "2030-06-01T12:00:00+00:00); the job would never run. Set a future expiry, or remove "
        "the job (a job that already expired at this instant stays accepted)",
    ]


def test_validate__applied_instant_that_passed_stays_valid() -> None:
    """A one-time job applied while its time was ahead still validates once that time has
    passed (it is done, not wrong), and plans unchanged; moving it to another past instant is
    refused."""
    text = """\
    version: 1
    jobs:
      once:
        at: '{at}'
        task: orchestrator.ping
        expires: '{at}'
    """
    at = "2030-06-01T13:00:00+02:00"
    before = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)
    reconcile.apply(
        desired.place(desired.load_text(textwrap.dedent(text.format(at=at)), now=before))
    )
    later = datetime(2030, 6, 2, tzinfo=UTC)
    manifest = desired.load_text(textwrap.dedent(text.format(at=at)), now=later)
    assert not reconcile.plan(desired.place(manifest)).pending()
    with pytest.raises(ManifestInvalid) as refused:
        desired.load_text(textwrap.dedent(text.format(at="2030-06-01T13:00:01+02:00")), now=later)
    assert [(e.job, e.field) for e in refused.value.errors] == [("once", "at"), ("once", "expires")]


def test_apply__at_with_an_offset_plans_clean(tmp_path: Path) -> None:
    """An ``at`` and ``expires`` written with a UTC offset used to drift for ever (the engine
    gives UTC back); now the definition is canonical UTC and ``plan --check`` exits 0."""
    when = SOON.astimezone(UTC).replace(tzinfo=None).isoformat() + "+01:00"
    path = write(
        tmp_path,
        f"""\
        version: 1
        jobs:
          once:
            at: '{when}'
            task: orchestrator.ping
            expires: '{when}'
        """,
    )
    assert_applies_and_plans_clean(path)
    definition = ManagedJob.objects.get(name="once").definition
    assert definition["trigger"]["when"].endswith("+00:00")


# --------------------------------------------------------------------------- transitions

TRIGGERS = {
    "cron": 'schedule: "0 3 * * *"',
    "interval": "schedule: every 7m",
    "at": f"at: '{SOON.isoformat()}'",
    "startup": "on: startup",
}
BODIES = {
    "task": "task: orchestrator.ping",
    "sql": "sql: SELECT 1",
    "command": 'command: ["true"]',
}


def manifest(*fields: str, target: str = "celery") -> str:
    """One job named ``job`` with these field lines (line 4 onwards), placed on ``target``."""
    lines = "".join(f"    {field}\n" for field in (*fields, f"target: {target}"))
    return f"version: 1\njobs:\n  job:\n{lines}"


@pytest.mark.parametrize("after", list(TRIGGERS))
@pytest.mark.parametrize("before", list(TRIGGERS))
def test_apply__every_trigger_changes_into_every_other(
    tmp_path: Path, before: str, after: str
) -> None:
    """schedule -> on: startup died on an AssertionError, and on: startup -> schedule left no
    periodic task; every trigger now changes into every other in one apply that plans clean."""
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS[before], BODIES["task"])))
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS[after], BODIES["task"])))
    tasks = list(PeriodicTask.objects.filter(name="job"))
    row = ManagedJob.objects.get(name="job")
    if after == "startup":
        assert tasks == []
        assert row.engine_id == "startup:job"
    else:
        assert [str(task.pk) for task in tasks] == [row.engine_id]
        assert tasks[0].one_off == (after == "at")
        assert tasks[0].enabled


@pytest.mark.parametrize("after", list(BODIES))
@pytest.mark.parametrize("before", list(BODIES))
def test_apply__every_body_changes_into_every_other(
    tmp_path: Path, before: str, after: str
) -> None:
    """sql, task and command bodies replace each other in place and plan clean."""
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS["cron"], BODIES[before])))
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS["cron"], BODIES[after])))
    assert ManagedJob.objects.get(name="job").definition["body"]["kind"] == after


@pytest.mark.parametrize(("before", "after"), [("pg_cron", "celery"), ("celery", "pg_cron")])
def test_apply__engine_changes_both_ways(tmp_path: Path, before: str, after: str) -> None:
    """A SQL job moves between pg_cron and Celery and back, leaving nothing in the old engine."""
    sql = BODIES["sql"]
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS["cron"], sql, target=before)))
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS["cron"], sql, target=after)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cron.job WHERE jobname = 'job'")
        in_pg_cron = cursor.fetchone()[0]
    in_celery = PeriodicTask.objects.filter(name="job").count()
    assert (in_pg_cron, in_celery) == ((1, 0) if after == "pg_cron" else (0, 1))


def fired_one_off(tmp_path: Path) -> str:
    """Apply a one-time job due in a few seconds, wait until its instant has passed, and leave
    what its run leaves: beat's claim (``last_run_at``), beat's disabling of the fired one-off
    task, the run in history. Returns the manifest, which now lists a past ``at``."""
    when = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    text = manifest(f"at: '{when.isoformat()}'", BODIES["task"])
    assert_applies_and_plans_clean(write(tmp_path, text))
    time.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()) + 0.2)
    PeriodicTask.objects.filter(name="job").update(
        enabled=False, last_run_at=when, total_run_count=0
    )
    JobRun.objects.create(
        job="job", engine="celery", engine_run_id="fired-job", status=RunStatus.SUCCEEDED,
        scheduled_for=when, started=when, finished=when,
    )  # fmt: skip
    return text


def test_apply__fired_one_time_job_changed_to_a_schedule_runs_again(tmp_path: Path) -> None:
    """A one-time job that fired is done: still listed with its past ``at`` it validates and
    plans clean. Changed into a schedule it is enabled again and counted afresh."""
    text = fired_one_off(tmp_path)
    assert jobs("plan", "--manifest", write(tmp_path, text), "--check")[0] == 0
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS["cron"], BODIES["task"])))
    task = PeriodicTask.objects.get(name="job")
    assert (task.enabled, task.one_off, task.total_run_count, task.last_run_at) == (
        True, False, 0, None,
    )  # fmt: skip


def test_apply__fired_one_time_job_with_a_new_description_stays_done(tmp_path: Path) -> None:
    """Editing anything but the instant of a fired one-time job does not run it again: its
    task stays disabled, on the same clocked schedule, and the plan is clean."""
    text = fired_one_off(tmp_path)
    assert_applies_and_plans_clean(write(tmp_path, text + "    description: ran once\n"))
    task = PeriodicTask.objects.get(name="job")
    assert (task.enabled, task.one_off, task.description) == (False, True, "ran once")


# --------------------------------------------------------------------------- text and numbers


@pytest.mark.parametrize(
    ("field", "line"),
    [
        ('description: "a\\0b"', 6),
        ('tags: [ok, "t\\0"]', 6),
        ('kwargs: {key: "v\\0"}', 6),
        ('kwargs: {"k\\0": v}', 6),
        ('kwargs: {nested: {list: [1, "\\0"]}}', 6),
        ('args: ["\\0"]', 6),
        ('queue: "q\\0"', 6),
        ('timezone: "UTC\\0"', 6),
    ],
)
def test_validate__nul_anywhere_refused(tmp_path: Path, field: str, line: int) -> None:
    """A NUL written as a YAML escape passed validate and failed the apply with DataError; now
    each place it can hide is a located error and nothing is applied."""
    path = write(
        tmp_path,
        f"""\
        version: 1
        jobs:
          job:
            schedule: "@hourly"
            task: orchestrator.ping
            {field}
        """,
    )
    before = snapshot()
    status, _, stderr = jobs("validate", "--manifest", path)
    assert status == 1
    first = stderr.splitlines()[0]
    assert first.startswith(f"{path}:{line}: job 'job': {field.split(':')[0]}: ")
    assert "contains a NUL character (\\0), which PostgreSQL text cannot hold" in first
    assert jobs("apply", "--manifest", path, "--yes")[0] == 1
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [('sql: "SELECT 1 -- \\0"', "sql"), ('command: "echo a\\0b"', "command"),
     ('command: [echo, "\\0"]', "command")],
)  # fmt: skip
def test_validate__nul_in_bodies_refused(tmp_path: Path, body: str, field: str) -> None:
    """A NUL in SQL text or in a command's arguments is refused at its line."""
    path = write(tmp_path, manifest(TRIGGERS["cron"], body))
    status, _, stderr = jobs("validate", "--manifest", path)
    assert status == 1
    assert stderr.startswith(f"{path}:5: job 'job': {field}: ")
    assert "NUL character" in stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("99999999999999999999", "is beyond 64 bits"),
        ("1.5e+300", "is a number of 1e16 or more"),
        (".nan", "JSON cannot carry"),
    ],
)
def test_validate__numbers_json_cannot_keep_refused(
    tmp_path: Path, value: str, message: str
) -> None:
    """Numbers that would not come back unchanged from PostgreSQL's JSON are refused."""
    path = write(tmp_path, manifest(TRIGGERS["cron"], BODIES["task"], f"kwargs: {{n: {value}}}"))
    status, _, stderr = jobs("validate", "--manifest", path)
    assert status == 1
    assert stderr.startswith(f"{path}:6: job 'job': kwargs: ")
    assert message in stderr


# --------------------------------------------------------------------------- clocked schedules


def test_apply__prune_and_trigger_change_remove_our_clocked_schedules(tmp_path: Path) -> None:
    """A one-time job's clocked schedule goes with it (apply --prune) or with its old trigger;
    a clocked schedule a hand-made task uses is never touched."""
    hand_clock = ClockedSchedule.objects.create(clocked_time=SOON)
    PeriodicTask.objects.create(
        name="hand-made", task="orchestrator.ping", clocked=hand_clock, one_off=True
    )
    both = f"""\
        version: 1
        jobs:
          once:
            at: '{SOON.isoformat()}'
            task: orchestrator.ping
          other:
            at: '{(SOON + timedelta(hours=1)).isoformat()}'
            task: orchestrator.ping
        """
    assert_applies_and_plans_clean(write(tmp_path, both))
    assert ClockedSchedule.objects.count() == 2  # "once" shares the hand-made task's instant
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS["cron"], BODIES["task"])))
    assert list(ClockedSchedule.objects.all()) == [hand_clock]
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS["at"], BODIES["task"])))
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS["cron"], BODIES["task"])))
    assert list(ClockedSchedule.objects.all()) == [hand_clock]
    assert PeriodicTask.objects.get(name="hand-made").clocked == hand_clock


def test_apply__pruned_one_time_job_leaves_no_clocked_schedule(tmp_path: Path) -> None:
    """apply --prune of a manifest without the one-time job removes its clocked schedule."""
    assert_applies_and_plans_clean(write(tmp_path, manifest(TRIGGERS["at"], BODIES["task"])))
    assert ClockedSchedule.objects.count() == 1
    assert_applies_and_plans_clean(write(tmp_path, "version: 1\njobs:\n"))
    assert ClockedSchedule.objects.count() == 0
