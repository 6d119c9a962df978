"""What operators do to one managed job: pause, resume, run now; and the list they look at.

These act on the registry and the job's engine together, in one transaction, and never need
the manifest: the registry keeps each job's applied definition. Pausing is operational state
(``ManagedJob.paused``), which every later apply keeps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from orchestrator.engines import backends
from orchestrator.errors import OrchestratorError
from orchestrator.models import ManagedJob
from orchestrator.schedules import format_every, jitter_offset
from orchestrator.specs import DEFAULT_CATCH_UP_LIMIT, Trigger
from orchestrator.stored import trigger_from

logger = logging.getLogger(__name__)


class UnknownJob(OrchestratorError):
    """No managed job has that name."""


class JobDisabled(OrchestratorError):
    """The manifest disables this job."""


def managed(name: str, *, lock: bool = False) -> ManagedJob:
    rows = ManagedJob.objects.select_for_update() if lock else ManagedJob.objects
    try:
        return rows.get(name=name)
    except ManagedJob.DoesNotExist:
        raise UnknownJob(
            f"no managed job is named {name!r} (`jobs list` shows them; `jobs apply` creates "
            "the manifest's)",
            job=name,
        ) from None


def set_paused(name: str, paused: bool) -> ManagedJob:
    """Pause or resume a job in its engine and remember it in the registry."""
    with transaction.atomic():
        row = managed(name, lock=True)
        if not paused and not row.definition.get("enabled", True):
            raise JobDisabled(
                "the manifest says `enabled: false`; enable it there and apply", job=name
            )
        backends()[row.engine].set_active(row.engine_id, not paused)
        row.paused = paused
        fields = ["paused"]
        if not paused:
            row.resumed_at = timezone.now()
            fields.append("resumed_at")
        row.save(update_fields=fields)
    logger.info("job %s", "paused" if paused else "resumed", extra={"job": name})
    return row


def run_now(name: str, kwargs: Mapping[str, object] | None = None) -> str:
    """Start one run of the job right away; return the id to follow it by.

    ``kwargs`` (task jobs only) are laid over the job's own for this run; the engine checks
    them against the task's signature before anything is sent (``Backend.run_now``)."""
    row = managed(name)
    queue = row.definition.get("queue")
    run_id = backends()[row.engine].run_now(
        row.definition, queue if isinstance(queue, str) else None, kwargs
    )
    logger.info(
        "run requested",
        extra={"job": name, "run_id": run_id, "kwargs": sorted(kwargs or {})},
    )
    return run_id


def parse_run_kwargs(text: str) -> dict[str, object]:
    """``--kwargs`` / the admin's field: a JSON object, or ``OrchestratorError`` saying why."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise OrchestratorError(f"the keyword arguments are not JSON: {error}") from error
    if not isinstance(value, dict):
        raise OrchestratorError(
            'the keyword arguments must be a JSON object, such as {"kind": "hourly"}'
        )
    return value


def trigger_of(definition: Mapping[str, object]) -> Trigger:
    """The trigger of a canonical definition (``specs.to_dict``)."""
    return trigger_from(definition)


def describe_trigger(definition: Mapping[str, object]) -> str:
    trigger = definition["trigger"]
    assert isinstance(trigger, dict)
    kind = trigger["kind"]
    if kind == "cron":
        return str(trigger["expr"])
    if kind == "every":
        return format_every(int(trigger["seconds"]))
    if kind == "at":
        return f"at {trigger['when']}"
    return "on startup"


def describe_scheduling(definition: Mapping[str, object], engine: str) -> str:
    """What happens around the job's slots, in one line: after downtime, and its jitter.

    An unset ``catch_up`` is the engine's own behaviour, said as such (pg_cron runs none of
    the slots it missed, Celery beat one)."""
    catch_up = definition.get("catch_up")
    if catch_up == "all":
        limit = definition.get("catch_up_limit") or DEFAULT_CATCH_UP_LIMIT
        after = f"catch_up: all (each missed slot, the latest {limit} at most)"
    elif catch_up in ("none", "one"):
        after = (
            f"catch_up: {catch_up} ({'no' if catch_up == 'none' else 'one'} run for missed slots)"
        )
    elif engine == "pg_cron":
        after = "catch_up unset: pg_cron runs none of the slots it missed"
    else:
        after = "catch_up unset: Celery beat sends one run for the slots it missed"
    jitter = definition.get("jitter")
    if isinstance(jitter, int) and jitter > 0:
        offset = jitter_offset(str(definition.get("name", "")), jitter)
        return f"{after}; jitter up to {jitter} s (this job starts {offset} s after each slot)"
    return after
