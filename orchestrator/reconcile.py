"""Apply a plan: make both engines match the manifest in one PostgreSQL transaction.

pg_cron keeps its jobs in ``cron.job`` and django-celery-beat in its own tables, both in the
application database, so one transaction covers both engines and the registry: an apply lands
whole or not at all. Concurrent applies serialize on a transaction-level advisory lock, and each
one computes its plan *after* taking the lock, so the second of two racing applies sees the
first one's result: it re-plans against it, and what it reports is what it made live. An apply
that was confirmed against a plan shown earlier (``jobs apply`` without ``--yes``, the admin's
Apply button) passes that plan's ``fingerprint``; when the plan under the lock differs, it fails
with ``PlanChanged`` and changes nothing, rather than apply what nobody saw.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from django.db import connection, transaction
from django.db.models.fields.json import KT
from django.utils import timezone

from orchestrator.bulk_copy import blank, copy_insert
from orchestrator.endings import ended_jobs
from orchestrator.engines import backends as configured_backends
from orchestrator.engines.base import STARTUP_PREFIX, Backend, Desired, LiveJob
from orchestrator.errors import OrchestratorError
from orchestrator.gc_pause import gc_paused
from orchestrator.models import ManagedJob
from orchestrator.pg_arrays import use_fast_text_arrays
from orchestrator.plan import (
    Applied,
    Change,
    Placed,
    PlacedJobs,
    Plan,
    make_plan,
    placed_jobs,
)
from orchestrator.specs import to_dict

logger = logging.getLogger(__name__)

#: pg_advisory_xact_lock key of "an apply is running" (any constant bigint; this one spells it)
APPLY_LOCK = 0x6F72_6368_6170_706C  # "orchappl"
BATCH = 1000

Progress = Callable[[str, int, int], None]


class PlanChanged(OrchestratorError):
    """Nothing applied: the engines changed since the plan was shown (another apply, or an edit
    outside the manifest). Review the new plan and apply again."""


def fingerprint(plan: Plan) -> str:
    """A digest of what a plan would change (every change but ``unchanged``, with its diff)."""
    changes = sorted(
        (change.name, change.action, change.target, change.diff)
        for change in plan.changes
        if change.action != "unchanged"
    )
    text = json.dumps(changes, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _quiet(phase: str, done: int, total: int) -> None:
    """The default progress callback: report nothing."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    plan: Plan
    pruned: bool

    def summary(self) -> dict[str, int]:
        summary = self.plan.summary()
        if not self.pruned:
            summary["delete_skipped"] = summary.pop("delete")
        return summary


def registry(hashes: Mapping[str, tuple[str, str]]) -> dict[str, Applied]:
    """The registry, with definitions read only where a diff will need them.

    ``hashes`` maps each manifest job to its (engine, spec hash); a registry row that matches
    is unchanged, and decoding 10,000 JSON definitions to learn that would dominate the plan.
    """
    rows = ManagedJob.objects.annotate(enabled=KT("definition__enabled")).values_list(
        "name", "engine", "engine_id", "spec_hash", "paused", "enabled"
    )
    applied = {
        name: Applied(
            name=name,
            engine=engine,
            engine_id=engine_id,
            spec_hash=digest,
            enabled=enabled != "false",
            paused=paused,
        )
        for name, engine, engine_id, digest, paused, enabled in rows
    }
    stale = [name for name, a in applied.items() if hashes.get(name) != (a.engine, a.spec_hash)]
    if stale:
        for name, definition in ManagedJob.objects.filter(name__in=stale).values_list(
            "name", "definition"
        ):
            applied[name] = replace(applied[name], definition=definition)
    return applied


def _plan_now(placed: Sequence[Placed] | PlacedJobs, backends: Mapping[str, Backend]) -> Plan:
    jobs = placed_jobs(placed)
    wanted = {name: (engine, jobs.hashes[name]) for name, engine in jobs.names()}
    live = live_jobs(backends)
    applied = registry(wanted)
    for name in ended_jobs(live) & applied.keys():
        applied[name] = replace(applied[name], ended=True)
    return make_plan(jobs, applied, live, backends)


def live_jobs(backends: Mapping[str, Backend]) -> dict[str, dict[str, LiveJob]]:
    return {engine: backend.live() for engine, backend in backends.items()}


def plan(
    placed: Sequence[Placed] | PlacedJobs, backends: Mapping[str, Backend] | None = None
) -> Plan:
    """The plan as of now, read without locks (what ``jobs plan`` shows).

    ``placed``: a list, or ``PlacedJobs`` such as ``desired.place_file``'s, which saves
    materialising the jobs that turn out unchanged."""
    with gc_paused():  # see apply
        return _plan_now(placed, backends or configured_backends())


def apply(
    placed: Sequence[Placed] | PlacedJobs,
    *,
    prune: bool = False,
    progress: Progress = _quiet,
    backends: Mapping[str, Backend] | None = None,
    expected: str | None = None,
) -> Outcome:
    """Plan under the apply lock and carry the plan out, all in one transaction.

    ``expected``: the ``fingerprint`` of the plan the user confirmed; a different plan under
    the lock raises ``PlanChanged`` before anything is written.
    """
    backends = backends or configured_backends()
    # gc held off: an apply builds a few objects per job (model rows, rendered states) while
    # every placed job stays alive, and each collection would walk all of them again
    with gc_paused(), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPLY_LOCK])
        use_fast_text_arrays(connection.connection)  # bulk_create's UNNEST arrays: see there
        jobs = placed_jobs(placed)  # each job's spec hash once, for the plan and the registry
        current = _plan_now(jobs, backends)
        if expected is not None and fingerprint(current) != expected:
            raise PlanChanged()
        _execute(current, prune, progress, backends, jobs.hashes, jobs.rendered)
    logger.info("manifest applied", extra={"summary": current.summary(), "prune": prune})
    return Outcome(plan=current, pruned=prune)


def _execute(
    plan: Plan,
    prune: bool,
    progress: Progress,
    backends: Mapping[str, Backend],
    hashes: Mapping[str, str],
    rendered: Mapping[str, Mapping[str, object] | None],
) -> None:
    now = timezone.now()
    removals: dict[str, list[str]] = defaultdict(list)
    creations: dict[str, list[Change]] = defaultdict(list)
    updates: dict[str, list[Change]] = defaultdict(list)
    forget: list[str] = []
    for change in plan.changes:
        if change.action == "delete":
            if prune and change.applied is not None:
                removals[change.applied.engine].append(change.applied.engine_id)
                forget.append(change.name)
        elif change.action == "create":
            creations[change.target].append(change)
        elif change.action in ("update", "drift"):
            if (change.moves or _changes_kind(change)) and change.applied is not None:
                removals[change.applied.engine].append(change.applied.engine_id)
                creations[change.target].append(change)
            elif change.live is None and change.action == "drift":
                creations[change.target].append(change)  # deleted outside the manifest
            else:
                updates[change.target].append(change)

    for engine, engine_ids in removals.items():
        progress(f"removing from {engine}", 0, len(engine_ids))
        backends[engine].delete(engine_ids)
        progress(f"removing from {engine}", len(engine_ids), len(engine_ids))
    ManagedJob.objects.filter(name__in=forget).delete()
    _mark_orphans(plan, now)

    rows: dict[str, ManagedJob] = {
        row.name: row
        for row in ManagedJob.objects.filter(
            name__in=[c.name for group in (*creations.values(), *updates.values()) for c in group]
        )
    }
    # Engines in their configured order, not the manifest's: pg_cron's first, whose scheduling
    # is the database's work (about 90 us a job in ``cron.schedule``), while the placement
    # cache's entry is still being pickled in the background (``PlacementCache.put_later``).
    new_row = blank(ManagedJob)
    for engine in _in_order(creations, backends):
        changes = creations[engine]
        for start, batch in _batches(changes):
            ids = backends[engine].create([_desired(c, rendered) for c in batch])
            for change in batch:
                row = rows.get(change.name) or new_row()
                rows[change.name] = _record(row, change, ids[change.name], now, hashes)
            progress(f"creating in {engine}", start + len(batch), len(changes))
    for engine in _in_order(updates, backends):
        changes = updates[engine]
        for start, batch in _batches(changes):
            backends[engine].update([(_applied_id(c), _desired(c, rendered)) for c in batch])
            for change in batch:
                row = rows.get(change.name) or new_row()
                rows[change.name] = _record(row, change, _applied_id(change), now, hashes)
            progress(f"updating in {engine}", start + len(batch), len(changes))
    new = [row for row in rows.values() if row.pk is None]
    old = [row for row in rows.values() if row.pk is not None]
    copy_insert(ManagedJob, new)
    ManagedJob.objects.bulk_update(
        old,
        ["engine", "engine_id", "spec_hash", "definition", "reasons", "paused", "applied_at"],
        batch_size=BATCH,
    )
    for backend in backends.values():
        backend.finish()


def _in_order(groups: Mapping[str, object], backends: Mapping[str, Backend]) -> list[str]:
    """The engines of ``groups`` in the order of ``backends`` (the configuration's)."""
    return [engine for engine in backends if engine in groups] + [
        engine for engine in groups if engine not in backends
    ]


def _mark_orphans(plan: Plan, now: object) -> None:
    """Remember which applied jobs the manifest no longer has (kept without ``--prune``), and
    forget it for those it has again: the status model shows them as ``orphaned``."""
    gone = [c.name for c in plan.changes if c.action == "delete"]
    ManagedJob.objects.filter(name__in=gone, orphaned_at__isnull=True).update(orphaned_at=now)
    ManagedJob.objects.exclude(name__in=gone).filter(orphaned_at__isnull=False).update(
        orphaned_at=None
    )


def has_orphans() -> bool:
    """Whether some applied job is marked as gone from the manifest (see ``_mark_orphans``)."""
    return ManagedJob.objects.filter(orphaned_at__isnull=False).exists()


def _changes_kind(change: Change) -> bool:
    """Whether the job changes between having an engine object and having none: an
    ``on: startup`` job has no periodic task (its engine id is ``startup:NAME``), every other
    trigger has one. Such a change replaces the job (remove, then create) like a move to
    another engine does; an in-place update has no object to update, or one too many."""
    if change.applied is None or change.placed is None:
        return False
    was_startup = change.applied.engine_id.startswith(STARTUP_PREFIX)
    return was_startup != (change.placed.schedule.kind == "startup")


def _applied_id(change: Change) -> str:
    """The engine id of a job being updated in place (only applied jobs are updated)."""
    if change.applied is None:
        raise OrchestratorError(f"job {change.name!r} has no applied engine job to update")
    return change.applied.engine_id


def _desired(change: Change, rendered: Mapping[str, Mapping[str, object] | None]) -> Desired:
    """The change's ``Desired``, with the state the placed manifest rendered for it (the
    backend then need not render each job a second time)."""
    desired = change.desired
    assert desired is not None
    state = rendered.get(change.name)
    return desired if state is None else replace(desired, rendered=state)


def _record(
    row: ManagedJob,
    change: Change,
    engine_id: str,
    now: object,
    hashes: Mapping[str, str],
) -> ManagedJob:
    placed = change.placed
    assert placed is not None
    row.name = change.name
    row.engine = change.target
    row.engine_id = engine_id
    row.spec_hash = hashes[change.name]
    row.definition = to_dict(placed.spec)
    row.reasons = list(placed.reasons)
    row.paused = change.paused
    row.applied_at = now
    return row


def _batches(items: Sequence[Change]) -> Iterable[tuple[int, Sequence[Change]]]:
    for start in range(0, len(items), BATCH):
        yield start, items[start : start + BATCH]
