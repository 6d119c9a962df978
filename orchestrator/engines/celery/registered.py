"""The definition a run executes, read from the orchestrator's registry, never from the message.

A schedule row (django-celery-beat's ``PeriodicTask``) and a run-now message carry only a job's
*name*. Anyone who can edit a periodic task (a staff user with django-celery-beat's change
permission) or write to the broker could otherwise put any SQL, task or program in a message and
have a worker run it. So the runner looks the name up in ``orchestrator.models.ManagedJob``,
which only ``jobs apply`` writes, and runs the definition found there: only the manifest defines
what runs.

A message that names no managed job, or a job that is no longer registered, is refused with a
``JobRefused`` that says why; the runner records it in run history like any failure and runs
nothing. Fields other than the name in a message (the pre-registry shape, or a tampered row) are
never executed: they are logged and ignored.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import OrchestratorError

logger = logging.getLogger(__name__)

#: the keyword arguments a run message carries: the job's name, and for a manual run of a task
#: job the keyword arguments an operator chose (``jobs run --kwargs``; ``check_run_kwargs``)
MESSAGE_FIELDS = frozenset({"name", "run_kwargs"})
#: the message field holding a manual run's keyword arguments
RUN_KWARGS = "run_kwargs"


class JobRefused(OrchestratorError):
    """The run was refused: its message names no job the manifest defines."""


class RunArgumentsInvalid(OrchestratorError):
    """The run's keyword arguments do not fit the job's task."""


def check_run_kwargs(
    app: Any,
    body: Mapping[str, Any],
    args: Sequence[Any],
    base: Mapping[str, Any],
    extra: object,
) -> dict[str, Any]:
    """The keyword arguments a manual run of a task job calls its task with: the registered
    ``kwargs`` with ``extra`` laid over them, checked against the task's signature.

    Only a ``task`` body takes them, and only as arguments of the task the registry names:
    nothing here can choose another task, program or SQL. Names the task does not take are
    refused (unless it takes ``**kwargs``), so a typo fails before anything runs. Called by
    run-now before sending and again by the runner (a message can be forged).
    """
    if not isinstance(extra, Mapping) or not all(isinstance(key, str) for key in extra):
        raise RunArgumentsInvalid("the run's keyword arguments must be a JSON object")
    if body.get("kind") != "task":
        raise RunArgumentsInvalid(
            f"keyword arguments apply to task jobs only; this job's body is {body.get('kind')}"
        )
    name = str(body.get("task"))
    task = app.tasks.get(name)
    if task is None:
        raise RunArgumentsInvalid(f"no task {name!r} is registered in the Celery app")
    try:
        signature = inspect.signature(task.run)
    except (TypeError, ValueError) as error:  # a C callable or an odd wrapper: say so
        raise RunArgumentsInvalid(f"cannot read the signature of task {name!r}: {error}") from error
    parameters = signature.parameters.values()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    accepted = [
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    unknown = sorted(set(extra) - set(accepted))
    if unknown and not takes_any:
        listed = ", ".join(accepted) or "no keyword arguments"
        raise RunArgumentsInvalid(
            f"task {name} takes no argument {', '.join(repr(key) for key in unknown)} "
            f"(it takes: {listed})"
        )
    merged = {**base, **extra}
    try:
        signature.bind(*args, **merged)
    except TypeError as error:  # a required argument left out, or one given twice
        raise RunArgumentsInvalid(f"task {name}: {error}") from error
    return merged


@dataclass(frozen=True, kw_only=True, slots=True)
class RunDefinition:
    """What one run of a job needs, as the registry has it (``specs.to_dict`` fields)."""

    name: str
    engine: str
    spec_hash: str
    body: Mapping[str, Any]
    args: list[Any]
    kwargs: dict[str, Any]
    retries: Mapping[str, int] | None
    timeout: int | None
    overlap: str | None
    max_runs: int | None
    database: str

    @classmethod
    def from_registry(
        cls, name: str, engine: str, spec_hash: str, definition: Mapping
    ) -> RunDefinition:
        body = definition.get("body")
        if not isinstance(body, Mapping) or "kind" not in body:
            raise JobRefused(
                "the registered definition has no body: re-apply the manifest", job=name
            )
        timeout = definition.get("timeout")
        max_runs = definition.get("max_runs")
        return cls(
            name=name,
            engine=engine,
            spec_hash=spec_hash,
            body=dict(body),
            args=list(definition.get("args") or []),
            kwargs=dict(definition.get("kwargs") or {}),
            retries=definition.get("retries") or None,
            timeout=int(timeout) if timeout else None,
            overlap=definition.get("overlap") or None,
            max_runs=int(max_runs) if max_runs else None,
            database=str(definition.get("database") or "default"),
        )


def ignored_fields(message: Mapping[str, Any]) -> list[str]:
    """Fields of a run message other than the name: never executed, reported by the runner."""
    return sorted(set(message) - MESSAGE_FIELDS)


def registered_definition(name: object, periodic_task_name: str | None = None) -> RunDefinition:
    """The registry's definition of job ``name``, or ``JobRefused``.

    ``periodic_task_name`` is the header beat (and django-celery-beat's "run" action) adds to
    a message sent from a schedule row. A managed row has its job's name and lives in the
    Celery engine; a hand-made row that names a managed job (to run it on a schedule of its
    own) is refused.
    """
    from orchestrator.models import Engine, ManagedJob

    if not isinstance(name, str) or not name:
        raise JobRefused(f"the message names no job ({name!r})")
    row = (
        ManagedJob.objects.filter(name=name)
        .values_list("engine", "spec_hash", "definition")
        .first()
    )
    if row is None:
        raise JobRefused(
            "no managed job has this name (not in the applied manifest, or pruned since the "
            "run was queued): nothing was run",
            job=name,
        )
    engine, spec_hash, definition = row
    if periodic_task_name is not None:
        if periodic_task_name != name:
            raise JobRefused(
                f"periodic task {periodic_task_name!r} is not this job's schedule: only the "
                "manifest schedules managed jobs; nothing was run",
                job=name,
            )
        if engine != Engine.CELERY:
            raise JobRefused(
                f"the job is placed on {engine}, not Celery; a periodic task of that name is "
                "not its schedule; nothing was run",
                job=name,
            )
    return RunDefinition.from_registry(name, engine, spec_hash, definition)


def body_call(name: str) -> tuple[list[Any] | None, dict[str, Any] | None]:
    """What the runner will call job ``name``'s body with, read from the registry as the runner
    reads it: a task's args and kwargs, a command's argv, the SQL text (run history records it
    with each start). ``(None, None)`` for a name the registry does not hold (the runner
    refuses it)."""
    from orchestrator.models import ManagedJob

    definition = ManagedJob.objects.filter(name=name).values_list("definition", flat=True).first()
    body = definition.get("body") if isinstance(definition, Mapping) else None
    if not isinstance(body, Mapping):
        return None, None
    kind = body.get("kind")
    if kind == "task":
        return list(definition.get("args") or []), dict(definition.get("kwargs") or {})
    if kind == "command":
        return list(body.get("argv") or []), {}
    if kind == "sql":
        return [str(body.get("sql", ""))], {}
    return None, None
