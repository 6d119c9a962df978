"""``jobs explain NAME``: where one job runs, why, and when it runs next.

``--format json`` prints exactly one object: ``{"name", "target", "reasons", "next_runs"}``,
the run times as ISO 8601 with their UTC offset, in the job's time zone. They are the instants
the chosen engine will really use (``orchestrator.engine_times``: Celery's own crontab class for
Celery jobs, pg_cron's reading in GMT for pg_cron jobs), so a daylight-saving day shows what
will run, not what croniter would compute. The text form adds the job's live state when it
has been applied (``orchestrator.status``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import desired, engine_times
from orchestrator.classifier import classify
from orchestrator.cli import context
from orchestrator.engines import backends
from orchestrator.errors import ManifestInvalid, ServiceError
from orchestrator.field_values import suggest
from orchestrator.operations import describe_scheduling
from orchestrator.schedules import ScheduleError, parse_instant
from orchestrator.specs import to_dict
from orchestrator.status import job_status

NAME = "explain"
HELP = "show which engine runs a job, why, and its next run times"
MAX_NEXT = 1000


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the job's name in the manifest")
    context.add_manifest_argument(parser)
    parser.add_argument(
        "--next", type=int, default=5, metavar="N", help="how many next run times (default 5)"
    )
    parser.add_argument(
        "--after",
        metavar="ISO8601",
        help="compute next runs after this instant, with offset (default: now)",
    )
    context.add_format_argument(parser)


def handle(command: BaseCommand, options: dict[str, Any]) -> int:
    path = context.manifest_path(options)
    name = options["name"]
    count = options["next"]
    if not 0 <= count <= MAX_NEXT:
        command.stderr.write(f"--next must be between 0 and {MAX_NEXT}")
        return 1
    try:
        after = parse_instant(options["after"]) if options.get("after") else datetime.now(UTC)
    except ScheduleError as error:
        command.stderr.write(f"--after: {error}")
        return 1
    try:
        manifest = context.load(options)
    except ManifestInvalid as invalid:
        return context.report_invalid(command, invalid, path)
    spec = manifest.get(name)
    if spec is None:
        command.stderr.write(f"{path}: no job named {name!r}{suggest(name, manifest.names)}")
        return 1
    try:
        placement = classify(spec, desired.fitters(context.capabilities(manifest)))
    except ServiceError as error:
        command.stderr.write(f"cannot explain {name!r}: {error}")
        return 1
    except ManifestInvalid as invalid:
        return context.report_invalid(command, invalid, path)
    engine = backends()[placement.target]
    upcoming = engine_times.next_runs(engine, spec.trigger, spec.timezone, count, after)
    runs = [run.isoformat() for run in upcoming]
    if options["format"] == "json":
        document = {
            "name": spec.name,
            "target": placement.target,
            "reasons": list(placement.reasons),
            "next_runs": runs,
        }
        command.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    command.stdout.write(f"{spec.name}: {placement.target}")
    command.stdout.write(f"  engine schedule: {placement.schedule.describe()}")
    command.stdout.write(
        f"  around the slots: {describe_scheduling(to_dict(spec), placement.target)}"
    )
    command.stdout.write("  reasons:")
    for reason in placement.reasons:
        command.stdout.write(f"    - {reason}")
    applied = job_status(spec.name)
    if applied is not None:  # what the engine does now, as `jobs list` and the admin say it
        command.stdout.write(f"  state: {applied.state.value} ({applied.detail})")
    if runs:
        command.stdout.write(f"  next runs ({spec.timezone}):")
        for run in runs:
            command.stdout.write(f"    {run}")
    else:
        command.stdout.write("  next runs: none on the clock")
    return 0
