"""catch_up, catch_up_limit, jitter and the one meaning of ``every``: validation, placement,
the offsets jitter draws, and the slots our beat sends after downtime (``slot_policy``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.classifier import classify
from orchestrator.engines.celery.slot_policy import POLICY_HEADER, SlotPolicy, slots_to_send
from orchestrator.errors import ManifestInvalid
from orchestrator.schedules import jitter_offset, shortest_gap
from orchestrator.specs import Every, spec_hash, to_dict
from tests.unit.conftest import engines, job_yaml, load, one_job, pg_cron_14

PG14 = pg_cron_14()


def errors_of(text: str) -> list[str]:
    with pytest.raises(ManifestInvalid) as caught:
        load(text)
    return [str(error) for error in caught.value.errors]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ("schedule: '@daily'\nsql: SELECT 1\ncatch_up: some",
         "jobs.yaml:6: job 'job': catch_up: must be one of none, one, all, got 'some'"),
        ("schedule: '@daily'\nsql: SELECT 1\ncatch_up: all\ncatch_up_limit: 0",
         "jobs.yaml:7: job 'job': catch_up_limit: must be at least 1 and at most 1000, got 0"),
        ("schedule: '@daily'\nsql: SELECT 1\ncatch_up: one\ncatch_up_limit: 5",
         "jobs.yaml:7: job 'job': catch_up_limit: bounds catch_up: all; this job has "
         "catch_up: one"),
        ("schedule: '@daily'\nsql: SELECT 1\ncatch_up_limit: 5",
         "jobs.yaml:6: job 'job': catch_up_limit: bounds catch_up: all; this job does not set "
         "catch_up"),
        ("schedule: every 10s\nsql: SELECT 1\njitter: 10s",
         "jobs.yaml:6: job 'job': jitter: 10 s is not shorter than the 10 s between two runs of "
         "this schedule, so a jittered run could start after the next one is due"),
        ("schedule: '0,5 * * * *'\nsql: SELECT 1\njitter: 5m",
         "jobs.yaml:6: job 'job': jitter: 300 s is not shorter than the 300 s between two runs "
         "of this schedule, so a jittered run could start after the next one is due"),
        ("schedule: '@daily'\nsql: SELECT 1\njitter: soon",
         "jobs.yaml:6: job 'job': jitter: cannot read 'soon' as a duration: write 30s, 15m, 2h, "
         "1d or seconds"),
        ("on: startup\ntask: tasks.knowledge.migrate\ncatch_up: all",
         "jobs.yaml:6: job 'job': catch_up: applies to a recurring schedule; this job runs at "
         "each start-up"),
        ("at: 2030-01-01T00:00:00Z\nsql: SELECT 1\njitter: 30s",
         "jobs.yaml:6: job 'job': jitter: applies to a recurring schedule; this job runs once"),
    ],
)  # fmt: skip
def test_validate__scheduling_fields_located(fields: str, error: str) -> None:
    """Each wrong value or combination is one error at its own line, job and field."""
    assert errors_of(job_yaml(fields)) == [error]


def test_validate__defaults_apply_and_drop_where_meaningless() -> None:
    """``defaults`` may set all three; a one-time or start-up job simply does not inherit them,
    and a limit is dropped for a job whose own catch_up is not ``all``."""
    manifest = load(
        """
        version: 1
        defaults: {catch_up: all, catch_up_limit: 4, jitter: 20s}
        jobs:
          a: {schedule: every 1m, sql: SELECT 1}
          b: {on: startup, task: tasks.knowledge.migrate}
          c: {schedule: '@hourly', sql: SELECT 1, catch_up: none}
        """
    )
    a, b, c = manifest.jobs
    assert (a.catch_up, a.catch_up_limit, a.jitter) == ("all", 4, 20)
    assert (b.catch_up, b.catch_up_limit, b.jitter) == (None, None, None)
    assert (c.catch_up, c.catch_up_limit, c.jitter) == ("none", None, 20)


def test_spec_hash__unchanged_for_jobs_without_the_new_fields() -> None:
    """The new fields enter the canonical definition only when set: applied jobs that do not
    use them plan clean after an upgrade; setting one is a change."""
    plain = one_job("schedule: '@daily'\nsql: SELECT 1")
    assert not {"catch_up", "catch_up_limit", "jitter"} & set(to_dict(plain))
    jittered = one_job("schedule: '@daily'\nsql: SELECT 1\njitter: 1m")
    assert to_dict(jittered)["jitter"] == 60
    assert spec_hash(plain) != spec_hash(jittered)


# --------------------------------------------------------------------------- placement


def test_place__catch_up_none_fits_pg_cron_one_and_all_go_to_celery() -> None:
    """pg_cron never catches up, which is ``none``; ``one``/``all`` place on Celery, saying why
    and what beat will do."""
    engines_ = engines(PG14)
    none = classify(one_job("schedule: '@daily'\nsql: SELECT 1\ncatch_up: none"), engines_)
    assert none.target == "pg_cron"
    one = classify(one_job("schedule: '@daily'\nsql: SELECT 1\ncatch_up: one"), engines_)
    assert one.target == "celery"
    assert (
        "Not pg_cron: pg_cron never runs the slots it missed while the database was down "
        "(catch_up: none); this job asks for catch_up: one." in one.reasons
    )
    every = classify(
        one_job("schedule: '@daily'\nsql: SELECT 1\ncatch_up: all\ncatch_up_limit: 3"), engines_
    )
    assert (
        "After beat downtime it sends each slot it missed, the latest 3 at most, each carrying "
        "its slot (catch_up: all)." in every.reasons
    )


def test_place__jitter_goes_to_celery_and_forced_pg_cron_is_refused_at_the_field() -> None:
    """pg_cron starts each job on its minute: a jittered job goes to Celery with its offset in
    the reasons; ``target: pg_cron`` with jitter or catch_up: all is a located error."""
    placed = classify(one_job("schedule: '@hourly'\nsql: SELECT 1\njitter: 30s"), engines(PG14))
    assert placed.target == "celery"
    offset = jitter_offset("job", 30)
    assert (
        f"Each run starts {offset} s after its slot: a fixed offset of at most 30 s drawn from "
        "the job's name (jitter)." in placed.reasons
    )
    spec = one_job("schedule: '@hourly'\ntarget: pg_cron\nsql: SELECT 1\njitter: 30s")
    with pytest.raises(ManifestInvalid) as caught:
        classify(spec, engines(PG14))
    assert [str(e) for e in caught.value.errors] == [
        "jobs.yaml:7: job 'job': jitter: target pg_cron cannot run this job: pg_cron starts "
        "every job at the start of its minute and cannot delay a job by an offset of its own; "
        "this job asks for a jitter of 30 s."
    ]


# --------------------------------------------------------------------------- jitter


def test_jitter_offset__deterministic_bounded_and_spread() -> None:
    """The same name always draws the same offset (across processes: BLAKE2b, not ``hash``),
    within 0..jitter, and 200 jobs on one schedule spread over most of the window."""
    assert jitter_offset("nightly-report", 30) == jitter_offset("nightly-report", 30)
    offsets = [jitter_offset(f"tenant-{i}", 30) for i in range(200)]
    assert all(0 <= offset <= 30 for offset in offsets)
    assert len(set(offsets)) >= 25
    assert jitter_offset("anything", 0) == 0


def test_shortest_gap__intervals_and_cron() -> None:
    """What a jitter must stay below: an interval's length, a cron expression's closest runs."""
    assert shortest_gap(Every(seconds=10)) == 10
    assert shortest_gap(one_job("schedule: '0,5 * * * *'\nsql: SELECT 1").trigger) == 300
    assert shortest_gap(one_job("schedule: '@daily'\nsql: SELECT 1").trigger) == 86400


# --------------------------------------------------------------------------- beat's slots


NOW = datetime(2027, 3, 1, 12, 0, 3, tzinfo=UTC)
TEN_S = (10, "seconds")
HOURLY_UTC = ("0", "*", "*", "*", "*", "UTC")


@pytest.mark.parametrize(
    ("catch_up", "sent"),
    [
        (None, ["12:00:00"]),
        ("one", ["12:00:00"]),
        ("none", ["12:00:00"]),
        ("all", ["11:59:30", "11:59:40", "11:59:50", "12:00:00"]),
    ],
)
def test_slots_to_send__interval_after_downtime(catch_up: str | None, sent: list[str]) -> None:
    """Beat down for a minute (last slot 11:59:00), back at 12:00:03 with an every-10s job: the
    latest slot is on time (3 s late), so ``none`` sends it alone; ``all`` sends the latest
    ``limit`` (4) missed slots oldest first; every mode claims 12:00:00."""
    policy = SlotPolicy(catch_up=catch_up, limit=4, align=True)
    last = datetime(2027, 3, 1, 11, 59, tzinfo=UTC)
    slots, claim = slots_to_send(policy, "interval", TEN_S, last, NOW)
    assert [slot.strftime("%H:%M:%S") for slot in slots] == sent
    assert claim == datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def test_slots_to_send__none_sends_nothing_when_the_latest_slot_is_late() -> None:
    """``none`` after an hour's downtime of an hourly job, back at 12:40: nothing is sent, and
    12:00 is claimed so that it is never looked at again."""
    policy = SlotPolicy(catch_up="none")
    last = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
    now = datetime(2027, 3, 1, 12, 40, tzinfo=UTC)
    assert slots_to_send(policy, "crontab", HOURLY_UTC, last, now) == (
        [],
        datetime(2027, 3, 1, 12, 0, tzinfo=UTC),
    )
    everything = SlotPolicy(catch_up="all", limit=10)
    slots, _ = slots_to_send(everything, "crontab", HOURLY_UTC, last, now)
    assert [slot.hour for slot in slots] == [11, 12]


def test_slots_to_send__jitter_delays_the_slot_not_its_identity() -> None:
    """With a 20 s offset, the 12:00:00 slot of an every-10s job is due at 12:00:20: at 12:00:03
    the latest sendable slot is 11:59:40, and the message still carries the slot's instant."""
    policy = SlotPolicy(catch_up="one", offset=20, align=True)
    last = datetime(2027, 3, 1, 11, 59, 30, tzinfo=UTC)
    slots, claim = slots_to_send(policy, "interval", TEN_S, last, NOW)
    assert slots == [datetime(2027, 3, 1, 11, 59, 40, tzinfo=UTC)]
    assert claim == slots[0]


def test_slots_to_send__aligned_interval_ignores_an_unaligned_last_run() -> None:
    """An interval task whose last run was not on the clock (applied before ``every`` had one
    meaning) is brought back onto the multiples of its length."""
    policy = SlotPolicy(align=True)
    last = datetime(2027, 3, 1, 11, 59, 57, 500000, tzinfo=UTC)
    slots, _ = slots_to_send(policy, "interval", TEN_S, last, NOW)
    assert slots == [datetime(2027, 3, 1, 12, 0, tzinfo=UTC)]


def test_slot_policy__header_round_trip_and_rows_without_one() -> None:
    """The backend's header reads back as the same policy; a hand-made task's headers (none,
    or not JSON) have no policy and keep stock Celery's behaviour."""
    policy = SlotPolicy(catch_up="all", limit=7, offset=12, align=True)
    text = json.dumps({"timelimit": [1, 2], POLICY_HEADER: policy.as_header()})
    assert SlotPolicy.from_headers(text) == policy
    assert SlotPolicy.from_headers("{}") is None
    assert SlotPolicy.from_headers(None) is None
    assert SlotPolicy.from_headers(POLICY_HEADER + " not json") is None


def test_slots_to_send__nothing_due_yet() -> None:
    """Before the first slot after the last run, nothing is sent and nothing claimed."""
    policy = SlotPolicy(catch_up="all", limit=3, align=True)
    assert slots_to_send(policy, "interval", TEN_S, NOW - timedelta(seconds=2), NOW) == ([], None)


# --------------------------------------------------------------------------- cron extensions


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("0 0 L * *", "2027-01-30", ["2027-01-31", "2027-02-28", "2027-03-31"]),
        ("0 9 * * 5#2", "2027-01-01", ["2027-01-08", "2027-02-12", "2027-03-12"]),
        ("0 9 * * L5", "2027-01-01", ["2027-01-29", "2027-02-26", "2027-03-26"]),
        ("0 9 15W * *", "2027-05-01", ["2027-05-14", "2027-06-15", "2027-07-15"]),
        ("0 0 1,L * *", "2027-01-30", ["2027-01-31", "2027-02-01", "2027-02-28"]),
    ],
)
def test_cron_extensions__read_as_croniter_and_placed_on_our_beat(
    text: str, after: str, expected: list[str]
) -> None:
    """L (last day, last Friday), W (nearest weekday: 15 May 2027 is a Saturday, so the 14th)
    and # (second Friday) are accepted; pg_cron refuses them with the reason, Celery takes them
    with a crontab superset while our beat (and explain) use croniter's own instants."""
    from orchestrator.engines.celery import clock

    spec = one_job(f"schedule: '{text}'\nsql: SELECT 1")
    placed = classify(spec, engines(PG14))
    assert placed.target == "celery"
    assert (
        f"Not pg_cron: pg_cron 1.4 (Vixie cron) does not read croniter's day extensions L, W "
        f"and # in '{text}'." in placed.reasons
    )
    assert placed.schedule.cron is not None
    assert placed.schedule.cron.split(" ")[2::2] == ["*", "*"]  # every day: a superset
    start = datetime.fromisoformat(after).replace(tzinfo=UTC)
    runs = clock.runs(spec.trigger, "UTC", start)
    assert [next(runs).date().isoformat() for _ in expected] == expected


def test_cron_extensions__forced_pg_cron_is_a_located_error() -> None:
    """``target: pg_cron`` with ``L`` is refused at the schedule's line, saying why."""
    spec = one_job("schedule: '0 0 L * *'\ntarget: pg_cron\nsql: SELECT 1")
    with pytest.raises(ManifestInvalid) as caught:
        classify(spec, engines(PG14))
    assert [str(e) for e in caught.value.errors] == [
        "jobs.yaml:4: job 'job': schedule: target pg_cron cannot run this job: pg_cron 1.4 "
        "(Vixie cron) does not read croniter's day extensions L, W and # in '0 0 L * *'."
    ]


def test_slots_to_send__croniter_expression_from_the_policy() -> None:
    """A row whose policy carries a croniter expression uses it, not the row's crontab
    superset: back on 2 March after a month down, ``all`` sends 31 Jan and 28 Feb only."""
    policy = SlotPolicy(catch_up="all", limit=5, cron="0 0 l * *", tz="UTC")
    superset = ("0", "0", "*", "*", "*", "UTC")
    last = datetime(2027, 1, 15, tzinfo=UTC)
    now = datetime(2027, 3, 2, 8, tzinfo=UTC)
    slots, claim = slots_to_send(policy, "crontab", superset, last, now)
    assert slots == [datetime(2027, 1, 31, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)]
    assert claim == slots[-1]
