"""The hall against in-memory engines: classification and planning know no engine by name.

``FakeEngine`` implements both the ``Backend`` protocol and ``EngineFit`` with dictionaries, so
these tests pin what the hall itself decides (preference order, explicit targets, reasons,
create/update/drift/delete, name clashes) with nothing but the protocol between them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

import pytest

from orchestrator.classifier import classify, classify_all
from orchestrator.engines.base import (
    Backend,
    Blocker,
    Desired,
    EngineFit,
    Health,
    LiveJob,
    Needs,
    Verdict,
)
from orchestrator.errors import ManifestInvalid
from orchestrator.plan import Applied, NameTaken, Placed, PlanRefused, make_plan
from orchestrator.schedules import EngineSchedule
from orchestrator.specs import JobSpec, SqlBody, Trigger, spec_hash, to_dict
from tests.unit.conftest import one_job

DAILY = EngineSchedule(kind="cron", cron="0 0 * * *")


class FakeEngine:
    """An engine that runs what ``accepts`` says, and keeps its jobs in a dict."""

    def __init__(
        self,
        engine: str,
        *,
        accepts: bool = True,
        blockers: Sequence[Blocker] = (),
        advantage: str | None = None,
    ) -> None:
        self.engine = engine
        self.label = engine.title()
        self.accepts = accepts
        self.blockers = tuple(blockers)
        self.advantage = advantage
        self.jobs: dict[str, LiveJob] = {}

    # EngineFit
    def fit(self, spec: JobSpec) -> Verdict:
        return Verdict(
            engine=self.engine,
            label=self.label,
            schedule=DAILY if self.accepts else None,
            blockers=self.blockers,
            reasons=(f"{self.label} runs it.",),
            chosen_because=f"{self.label} is preferred.",
            advantage=self.advantage,
        )

    # Backend
    def capabilities(self, needs: Needs) -> None:
        return None

    def fitter(self, capabilities: object) -> FakeEngine:
        return self

    def health(self) -> Health:
        return Health(
            engine=self.engine, label=self.label, state="running", healthy=True, detail=""
        )

    def ensure_ready(self) -> str:
        return f"{self.label} is ready"

    def import_runs(self) -> int:
        return 0

    def metric_families(self) -> tuple[()]:
        return ()

    def runs(
        self, trigger: Trigger, timezone: str, after: datetime, last_run: datetime | None = None
    ) -> Iterator[datetime]:
        return iter(())

    def schedule_of(self, trigger: Trigger, timezone: str) -> EngineSchedule | None:
        return DAILY

    def live(self) -> dict[str, LiveJob]:
        return dict(self.jobs)

    def problems(self, spec: JobSpec) -> list[tuple[str, str]]:
        return []

    def render(self, desired: Desired) -> Mapping[str, object] | None:
        body = desired.spec.body
        return {"body": body.sql if isinstance(body, SqlBody) else None, "active": desired.active}

    def create(self, jobs: Sequence[Desired]) -> dict[str, str]:
        return {job.spec.name: job.spec.name for job in jobs}

    def update(self, jobs: Sequence[tuple[str, Desired]]) -> None:
        return None

    def delete(self, engine_ids: Sequence[str]) -> None:
        return None

    def set_active(self, engine_id: str, active: bool) -> None:
        return None

    def run_now(self, definition: Mapping[str, object], queue: str | None) -> str:
        return "run-1"

    def run_slot(self, definition: Mapping[str, object], queue: str | None, slot: datetime) -> str:
        return f"run-{slot.isoformat()}"

    def finish(self) -> None:
        return None


def test_fake_engine__satisfies_both_protocols() -> None:
    """The fake is a complete Backend, so the tests below use only what the protocol offers."""
    fake: EngineFit = FakeEngine("alpha")
    assert isinstance(fake, Backend)


def test_classify__first_engine_that_fits_wins() -> None:
    """Preference order is the order of the engines; the first with no blocker takes the job."""
    spec = one_job("schedule: '@daily'\nsql: SELECT 1")
    first = FakeEngine("pg_cron", blockers=[Blocker("sql", "it is busy.")])
    second = FakeEngine("celery")
    placement = classify(spec, [first, second])
    assert placement.target == "celery"
    assert placement.reasons == ("Not Pg_Cron: it is busy.", "Celery runs it.")
    placement = classify(spec, [second, first])
    assert placement.target == "celery"
    assert placement.reasons[0] == "Celery is preferred."


def test_classify__advantage_names_each_later_engine() -> None:
    """The chosen engine's advantage is said against every engine after it, and their
    blockers are listed as what they could not do."""
    spec = one_job("schedule: '@daily'\nsql: SELECT 1")
    first = FakeEngine("pg_cron", advantage="it is closer.")
    second = FakeEngine("celery", blockers=[Blocker("schedule", "it reads days differently.")])
    placement = classify(spec, [first, second])
    assert placement.reasons == (
        "Pg_Cron is preferred.",
        "Pg_Cron runs it.",
        "Celery could not run it exactly: it reads days differently.",
        "Not Celery: it is closer.",
    )


def test_classify__explicit_target_refused_by_its_blockers() -> None:
    """An explicit target with a refusing blocker is a located error at the blocker's field;
    a blocker that only rules out ``auto`` is kept as "Not verified"."""
    spec = one_job("schedule: '@daily'\ntarget: pg_cron\nsql: SELECT 1")
    refusing = FakeEngine("pg_cron", blockers=[Blocker("sql", "it cannot.")])
    with pytest.raises(ManifestInvalid) as caught:
        classify(spec, [refusing, FakeEngine("celery")])
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("sql", "target pg_cron cannot run this job: it cannot.")
    ]
    lenient = FakeEngine("pg_cron", blockers=[Blocker("sql", "unchecked.", refuses_explicit=False)])
    placement = classify(spec, [lenient, FakeEngine("celery")])
    assert placement.target == "pg_cron"
    assert placement.reasons[0] == "target: pg_cron was chosen in the manifest."
    assert "Not verified: unchecked." in placement.reasons


def test_classify__explicit_target_not_configured() -> None:
    """A target naming an engine that is not configured is an error at ``target``."""
    spec = one_job("schedule: '@daily'\ntarget: pg_cron\nsql: SELECT 1")
    with pytest.raises(ManifestInvalid) as caught:
        classify(spec, [FakeEngine("celery")])
    assert caught.value.errors[0].field == "target"
    assert "no engine 'pg_cron' is configured" in caught.value.errors[0].message


def test_classify__no_engine_fits_quotes_every_engine() -> None:
    """When nothing fits, one error at the trigger quotes the last engine, then the others."""
    spec = one_job("schedule: '@daily'\nsql: SELECT 1")
    engines = [
        FakeEngine("pg_cron", blockers=[Blocker("sql", "A.")]),
        FakeEngine("celery", accepts=False, blockers=[Blocker("schedule", "B.")]),
    ]
    placements, errors = classify_all([spec], engines)
    assert placements == {}
    assert [(e.field, e.message) for e in errors] == [
        ("schedule", "no engine can run this job exactly: B. And Pg_Cron: A.")
    ]


def test_classify__owner_only_maintenance_says_what_the_jobs_role_skips() -> None:
    """VACUUM/ANALYZE as the jobs role skip what it does not own without failing: the reasons
    say so, whichever engine runs the job; other SQL gets no such note."""
    vacuum = one_job("schedule: '@daily'\nsql: VACUUM ANALYZE")
    (note,) = [r for r in classify(vacuum, [FakeEngine("celery")]).reasons if "jobs role" in r]
    assert note.startswith("SQL jobs run as the jobs role: VACUUM skips, with a warning,")
    select = one_job("schedule: '@daily'\nsql: SELECT 1")
    assert not [r for r in classify(select, [FakeEngine("celery")]).reasons if "jobs role" in r]


# --------------------------------------------------------------------------- planning


def _placed(fields: str, name: str = "job", engine: str = "alpha") -> Placed:
    return Placed(spec=one_job(fields, name), engine=engine, schedule=DAILY)


def _applied(job: Placed, *, engine: str | None = None, digest: str | None = None) -> Applied:
    return Applied(
        name=job.spec.name,
        engine=engine or job.engine,
        engine_id=job.spec.name,
        spec_hash=digest or spec_hash(job.spec),
        definition=to_dict(job.spec),
    )


def _live(engine: FakeEngine, job: Placed, **state: object) -> None:
    rendered = engine.render(Desired(spec=job.spec, schedule=job.schedule))
    assert rendered is not None
    engine.jobs[job.spec.name] = LiveJob(
        engine=engine.engine,
        engine_id=job.spec.name,
        name=job.spec.name,
        active=True,
        state={**rendered, **state},
    )


def _plan(placed: list[Placed], applied: dict[str, Applied], *engines: FakeEngine):
    backends = {engine.engine: engine for engine in engines}
    live = {engine.engine: engine.live() for engine in engines}
    return make_plan(placed, applied, live, backends)


def test_make_plan__create_unchanged_delete() -> None:
    """New jobs are created, applied and identical ones unchanged, registry-only ones deleted."""
    alpha = FakeEngine("alpha")
    new, kept = (
        _placed("schedule: '@daily'\nsql: SELECT 1", "new"),
        _placed("schedule: '@daily'\nsql: SELECT 2", "kept"),
    )
    gone = _placed("schedule: '@daily'\nsql: SELECT 3", "gone")
    _live(alpha, kept)
    _live(alpha, gone)
    plan = _plan([new, kept], {"kept": _applied(kept), "gone": _applied(gone)}, alpha)
    assert [(c.name, c.action) for c in plan.changes] == [
        ("new", "create"),
        ("gone", "delete"),
        ("kept", "unchanged"),
    ]
    assert plan.pending(prune=False)


def test_make_plan__changed_definition_is_an_update_with_a_field_diff() -> None:
    """A changed spec hash is an update; the diff names the fields that changed."""
    alpha = FakeEngine("alpha")
    before = _placed("schedule: '@daily'\nsql: SELECT 1")
    after = _placed("schedule: '@daily'\nsql: SELECT 2")
    _live(alpha, before)
    plan = _plan([after], {"job": _applied(before)}, alpha)
    (change,) = plan.changes
    assert change.action == "update"
    assert change.diff["body"] == {
        "from": {"kind": "sql", "sql": "SELECT 1"},
        "to": {"kind": "sql", "sql": "SELECT 2"},
    }


def test_make_plan__engine_edit_is_drift() -> None:
    """Same definition, but the engine's job differs from what the backend would write."""
    alpha = FakeEngine("alpha")
    job = _placed("schedule: '@daily'\nsql: SELECT 1")
    _live(alpha, job, body="SELECT 'edited by hand'")
    (change,) = _plan([job], {"job": _applied(job)}, alpha).changes
    assert change.action == "drift"
    assert change.diff == {"body": {"from": "SELECT 'edited by hand'", "to": "SELECT 1"}}
    alpha.jobs.clear()
    (change,) = _plan([job], {"job": _applied(job)}, alpha).changes
    assert (change.action, change.diff) == ("drift", {"exists": {"from": False, "to": True}})


def test_make_plan__move_between_engines_is_an_update() -> None:
    """A job the classifier now places on another engine is an update with a target diff."""
    alpha, beta = FakeEngine("alpha"), FakeEngine("beta")
    job = _placed("schedule: '@daily'\nsql: SELECT 1", engine="beta")
    (change,) = _plan([job], {"job": _applied(job, engine="alpha")}, alpha, beta).changes
    assert change.action == "update"
    assert change.moves
    assert change.diff["target"] == {"from": "alpha", "to": "beta"}


def test_make_plan__hand_made_job_of_the_same_name_is_refused() -> None:
    """A live job we did not create blocks the plan with a located NameTaken; other
    hand-made jobs are listed as unmanaged and left alone."""
    alpha = FakeEngine("alpha")
    job = _placed("schedule: '@daily'\nsql: SELECT 1")
    _live(alpha, job)
    with pytest.raises(PlanRefused) as caught:
        _plan([job], {}, alpha)
    (error,) = caught.value.errors
    assert isinstance(error, NameTaken)
    assert (error.job, error.field) == ("job", "name")
    other = _placed("schedule: '@daily'\nsql: SELECT 1", "other")
    plan = _plan([other], {}, alpha)
    assert [job.name for job in plan.unmanaged] == ["job"]
