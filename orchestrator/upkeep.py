"""The orchestrator's own upkeep: built-in jobs it installs beside the manifest's.

Importing pg_cron's runs into the run history, pruning both histories, sweeping runs whose
worker died and notifying missed slots (``orchestrator.missed_notify``) are the orchestrator's
business, not the application's, so they are not written in the user's ``jobs.yaml``. They
are jobs all the same: placed by the classifier, planned, applied, listed and shown in the
admin like any other, under names starting with ``orchestrator.`` (reserved: a manifest job
may not use them). Settings choose whether they are installed
(``ORCHESTRATOR_UPKEEP``) and how much history is kept (``ORCHESTRATOR_RUN_HISTORY_DAYS``,
``ORCHESTRATOR_CRON_HISTORY_DAYS``); a change of those settings shows in the next plan.

The definitions are built as data and validated by the same loader as the manifest, so an
upkeep job can never be something a manifest could not say.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.conf import settings

from orchestrator.errors import ManifestInvalid, OrchestratorError
from orchestrator.manifest import Manifest, load_manifest_text

#: Names of built-in jobs start with this; manifest jobs may not.
PREFIX = "orchestrator."
#: Where upkeep errors and lines point: the settings, not a file of the user's.
SOURCE = "<built-in upkeep>"
#: How often missed slots become ``missed`` notifications: a notification is at most this
#: (plus ``missed.GRACE``) late. docs/manifest.md's notify section says so.
MISSED_CHECK_SCHEDULE = "every 5m"


def definitions() -> dict[str, dict[str, Any]]:
    """The upkeep jobs as manifest entries, from the settings (none when upkeep is off)."""
    if not settings.ORCHESTRATOR_UPKEEP:
        return {}
    run_days = int(settings.ORCHESTRATOR_RUN_HISTORY_DAYS)
    cron_days = int(settings.ORCHESTRATOR_CRON_HISTORY_DAYS)
    # Each job's SQL is text the engine runs later, not a query run here: the only value in it
    # is an int from the settings. The functions are the history owner's (the jobs role that
    # runs these may not delete history itself: orchestrator/sql/0005_upkeep_as_jobs_role.sql).
    prune_cron = "SELECT orchestrator_prune_cron_history(%d)"
    prune_runs = "SELECT orchestrator_prune_run_history(%d)"
    return {
        f"{PREFIX}import-cron-runs": {
            "schedule": "* * * * *",
            "sql": "SELECT orchestrator_import_cron_runs()",
            "tags": ["upkeep"],
            "description": "Copy finished pg_cron runs into the orchestrator's run history",
        },
        f"{PREFIX}prune-cron-history": {
            "schedule": "30 0 * * *",
            "sql": prune_cron % cron_days,
            "tags": ["upkeep"],
            "description": f"Keep {cron_days} days of pg_cron's own run history",
        },
        f"{PREFIX}prune-run-history": {
            "schedule": "45 0 * * *",
            "sql": prune_runs % run_days,
            "tags": ["upkeep"],
            "description": f"Keep {run_days} days of the orchestrator's run history",
        },
        f"{PREFIX}lost-run-sweep": {
            "schedule": "every 10m",
            "task": "orchestrator.sweep_lost_runs",
            "tags": ["upkeep"],
            "description": "Mark the runs of workers that died as lost",
        },
        f"{PREFIX}missed-run-check": {
            "schedule": MISSED_CHECK_SCHEDULE,
            "task": "orchestrator.check_missed_runs",
            "tags": ["upkeep"],
            "description": "Notify jobs whose notify asks for 'missed' of slots nothing ran in",
        },
    }


def upkeep_manifest(
    *, task_names: frozenset[str] | None, database_aliases: frozenset[str] | None
) -> Manifest | None:
    """The upkeep jobs, loaded and validated like a manifest; ``None`` when upkeep is off."""
    jobs = definitions()
    if not jobs:
        return None
    text = yaml.safe_dump({"version": 1, "jobs": jobs}, sort_keys=False)
    return load_manifest_text(
        text, path=SOURCE, task_names=task_names, database_aliases=database_aliases
    )


def with_upkeep(manifest: Manifest, upkeep: Manifest | None) -> Manifest:
    """The manifest's jobs followed by the upkeep jobs; a manifest job using the reserved
    prefix is a located error."""
    reserved = [
        OrchestratorError(
            f"names starting with {PREFIX!r} are reserved for the orchestrator's built-in jobs",
            path=job.path,
            line=job.line,
            job=job.name,
            field="name",
        )
        for job in manifest.jobs
        if job.name.startswith(PREFIX)
    ]
    if reserved:
        raise ManifestInvalid(reserved, path=manifest.path)
    if upkeep is None:
        return manifest
    return Manifest(path=manifest.path, version=manifest.version, jobs=manifest.jobs + upkeep.jobs)
