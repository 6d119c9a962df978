"""A typed, frozen view of one registry row: the job's applied definition, read in one place.

The registry keeps each job's canonical definition as JSON (``specs.to_dict``). Views used to
read it by string keys (``definition.get("timezone") or "UTC"``, ``definition["trigger"]``...),
each with its own default; ``StoredJob`` reads it once, with the manifest's defaults, into
the same types the manifest loader produces, so the status model, missed-run counting and the
CLI and admin agree on what a job's time zone, trigger and limits are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from orchestrator.models import ManagedJob
from orchestrator.schedules import parse_at, parse_instant, parse_schedule
from orchestrator.specs import (
    OVERLAP_MODES,
    At,
    Body,
    CatchUp,
    CommandBody,
    Every,
    FrozenJson,
    JobSpec,
    JsonObject,
    Notify,
    Overlap,
    Retries,
    SqlBody,
    Startup,
    Target,
    TaskBody,
    Trigger,
    freeze,
)


def trigger_from(definition: Mapping[str, object]) -> Trigger:
    """The trigger of a canonical definition."""
    trigger = definition.get("trigger")
    if not isinstance(trigger, Mapping):
        return Startup()
    kind = trigger.get("kind")
    if kind == "cron":
        parsed = parse_schedule(str(trigger["expr"]))
        return parsed
    if kind == "every":
        return Every(seconds=int(str(trigger["seconds"])))
    if kind == "at":
        return parse_at(str(trigger["when"]))
    return Startup()


def _body_from(body: object) -> Body:
    if not isinstance(body, Mapping):
        return SqlBody(sql="")
    if body.get("kind") == "task":
        return TaskBody(task=str(body.get("task")))
    if body.get("kind") == "command":
        argv = body.get("argv")
        parts = argv if isinstance(argv, list | tuple) else ()
        return CommandBody(argv=tuple(str(part) for part in parts))
    return SqlBody(sql=str(body.get("sql") or ""))


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _instant(value: object) -> datetime | None:
    return parse_instant(str(value)) if value else None


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredJob:
    """One managed job as applied: registry facts plus its definition, typed."""

    pk: int
    name: str
    engine: str
    engine_id: str
    trigger: Trigger
    timezone: str
    enabled: bool
    paused: bool
    max_runs: int | None
    expires: datetime | None
    queue: str | None
    description: str
    applied_at: datetime
    resumed_at: datetime | None
    orphaned_at: datetime | None
    definition: Mapping[str, object]

    @classmethod
    def of(cls, row: ManagedJob) -> StoredJob:
        definition = row.definition or {}
        max_runs = definition.get("max_runs")
        queue = definition.get("queue")
        return cls(
            pk=row.pk,
            name=row.name,
            engine=row.engine,
            engine_id=row.engine_id,
            trigger=trigger_from(definition),
            timezone=str(definition.get("timezone") or "UTC"),
            enabled=definition.get("enabled", True) is not False,
            paused=row.paused,
            max_runs=int(str(max_runs)) if max_runs else None,
            expires=_instant(definition.get("expires")),
            queue=queue if isinstance(queue, str) and queue else None,
            description=str(definition.get("description") or ""),
            applied_at=row.applied_at,
            resumed_at=row.resumed_at,
            orphaned_at=row.orphaned_at,
            definition=definition,
        )

    @property
    def one_time(self) -> bool:
        return isinstance(self.trigger, At)

    @property
    def on_startup(self) -> bool:
        return isinstance(self.trigger, Startup)

    def spec(self) -> JobSpec:
        """The ``JobSpec`` this definition was made from (what a backend renders)."""
        d = self.definition
        retries = d.get("retries")
        timeout = d.get("timeout")
        overlap = d.get("overlap")
        return JobSpec(
            name=self.name,
            trigger=self.trigger,
            body=_body_from(d.get("body")),
            target=_target(d.get("target")),
            enabled=self.enabled,
            timezone=self.timezone,
            queue=self.queue,
            args=_frozen_args(d.get("args")),
            kwargs=_frozen_kwargs(d.get("kwargs")),
            retries=(
                Retries(max=int(retries["max"]), backoff=int(retries.get("backoff", 0)))
                if isinstance(retries, Mapping)
                else None
            ),
            timeout=int(str(timeout)) if timeout else None,
            overlap=_overlap(overlap),
            catch_up=_catch_up(d.get("catch_up")),
            catch_up_limit=_positive(d.get("catch_up_limit")),
            jitter=_positive(d.get("jitter")),
            max_runs=self.max_runs,
            expires=self.expires,
            notify=Notify.from_dict(d.get("notify")),
            database=str(d.get("database") or "default"),
            tags=tuple(str(tag) for tag in _list(d.get("tags"))),
            description=self.description,
        )


def _catch_up(value: object) -> CatchUp | None:
    """The stored ``catch_up``, ``None`` (the engine's own) for anything else."""
    if value == "none":
        return "none"
    if value == "one":
        return "one"
    if value == "all":
        return "all"
    return None


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _overlap(value: object) -> Overlap | None:
    """The stored overlap mode, ``None`` (the engine's own behaviour) for anything else."""
    return cast(Overlap, value) if value in OVERLAP_MODES else None


def _target(value: object) -> Target:
    """The stored target, ``auto`` for anything the manifest could not have written."""
    if value == "pg_cron":
        return "pg_cron"
    if value == "celery":
        return "celery"
    return "auto"


def _frozen_args(value: object) -> tuple[FrozenJson, ...]:
    frozen = freeze(value if isinstance(value, list) else [])
    return frozen if isinstance(frozen, tuple) else ()


def _frozen_kwargs(value: object) -> JsonObject:
    frozen = freeze(value if isinstance(value, Mapping) else {})
    return frozen if isinstance(frozen, JsonObject) else JsonObject()
