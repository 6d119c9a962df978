"""From a manifest file to placed jobs: load, validate against the live system, classify.

Validation needs facts only the running system has (the Celery app's registered task names,
Django's database aliases, what pg_cron and ``pg_catalog`` offer), so this is the one place that
gathers them; ``jobs validate|explain|plan|apply`` and the tests all go through it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError

from orchestrator.classifier import classify_all
from orchestrator.engines import backends
from orchestrator.engines.base import Desired, EngineFit, Needs
from orchestrator.errors import ManifestInvalid, OrchestratorError
from orchestrator.gc_pause import gc_paused
from orchestrator.job_sources import JobSource, SourceIndex
from orchestrator.limits import Clock
from orchestrator.manifest import Manifest, job_functions, load_manifest, load_manifest_text
from orchestrator.placed_manifest import PlacedManifest
from orchestrator.placement_cache import (
    Entry,
    PlacementCache,
    cached_placement,
    capabilities_stamp,
    context_key,
    entry_key,
    settings_stamp,
    source_stamp,
    valid_until,
)
from orchestrator.plan import Placed
from orchestrator.schedules import stored_instant
from orchestrator.specs import spec_hash
from orchestrator.upkeep import upkeep_manifest, with_upkeep

logger = logging.getLogger(__name__)

#: the packages whose code decides a placement (their source stamps the placement cache)
_CODE_ROOTS = ("orchestrator", "sql_jobs", "tasks", "project")


def manifest_path(path: str | Path | None = None) -> Path:
    return Path(path or settings.ORCHESTRATOR_MANIFEST)


def task_names() -> frozenset[str]:
    """Every task the Celery app registers, after importing the task modules.

    The modules are imported as the ``import_modules`` signal would have them imported
    (``app.loader.import_default_modules``), but not through it: its other receiver, Celery's
    Django fixup, runs every Django system check again (admin included, a third of a
    second), which a worker needs at start-up and a ``jobs`` command does not."""
    from project.celery import app  # the app configures itself from Django settings

    app.autodiscover_tasks(force=True)
    for module in app.loader.default_modules:
        app.loader.import_task_module(module)
    return frozenset(app.tasks)


def manifest_aliases() -> frozenset[str]:
    """The Django database aliases a manifest may name: not the jobs role's connections."""
    return frozenset(settings.DATABASES) - set(settings.ORCHESTRATOR_JOBS_CONNECTIONS.values())


def database_names() -> dict[str, str]:
    """Django aliases on the same server as ``default`` -> their database names.

    pg_cron can only run jobs in databases of its own server.
    """
    default = settings.DATABASES["default"]
    server = (default.get("HOST") or "", str(default.get("PORT") or ""))
    return {
        alias: str(config["NAME"])
        for alias, config in settings.DATABASES.items()
        if alias in manifest_aliases()
        and (config.get("HOST") or "", str(config.get("PORT") or "")) == server
    }


def applied_instant(job: str, field: str) -> datetime | None:
    """The ``at`` or ``expires`` the registry recorded for ``job`` at its last apply.

    Asked only about instants already past, so a manifest with none costs no query. When the
    registry cannot be read (``jobs validate`` without a database), nothing counts as applied:
    validate may then refuse a past instant that apply would accept, never the reverse.
    """
    from orchestrator.models import ManagedJob  # the app registry is ready once this is called

    try:
        definition = (
            ManagedJob.objects.filter(name=job).values_list("definition", flat=True).first()
        )
    except DatabaseError as error:
        logger.warning(
            "registry unreadable; past instants checked strictly", extra={"error": str(error)}
        )
        return None
    if not isinstance(definition, dict):
        return None
    value = definition.get(field)
    if field == "at":
        trigger = definition.get("trigger")
        value = (
            trigger.get("when")
            if isinstance(trigger, dict) and trigger.get("kind") == "at"
            else None
        )
    return stored_instant(value)


def clock(now: datetime | None = None) -> Clock:
    """Past instants measured against ``now`` (default: the real time) and the registry."""
    return Clock(now=now, applied=applied_instant)


def load(path: str | Path | None = None, *, now: datetime | None = None) -> Manifest:
    """The validated manifest at ``path`` (default: settings.ORCHESTRATOR_MANIFEST), followed
    by the orchestrator's built-in upkeep jobs (``orchestrator.upkeep``)."""
    tasks, aliases = task_names(), manifest_aliases()
    manifest = load_manifest(
        manifest_path(path), task_names=tasks, database_aliases=aliases, clock=clock(now)
    )
    return with_upkeep(manifest, upkeep_manifest(task_names=tasks, database_aliases=aliases))


def load_text(text: str, path: str = "<string>", *, now: datetime | None = None) -> Manifest:
    """Like ``load``, for manifest text held in memory (tests, previews)."""
    tasks, aliases = task_names(), manifest_aliases()
    manifest = load_manifest_text(
        text, path=path, task_names=tasks, database_aliases=aliases, clock=clock(now)
    )
    return with_upkeep(manifest, upkeep_manifest(task_names=tasks, database_aliases=aliases))


#: What each engine, as installed, offers: engine name -> its own capabilities object.
Capabilities = dict[str, object]


def capabilities_for(manifest: Manifest) -> Capabilities:
    """Each engine's capabilities, read live for what this manifest needs; raises
    ``ServiceError`` when an engine cannot be reached."""
    needs = Needs(function_names=manifest.function_names(), database_names=database_names())
    return {engine: backend.capabilities(needs) for engine, backend in backends().items()}


def fitters(capabilities: Capabilities) -> list[EngineFit]:
    """Each engine's judgement bound to its capabilities, in preference order: the order of
    ``settings.ORCHESTRATOR_BACKENDS`` (the first engine that fits a ``target: auto`` job runs it).
    """
    return [backend.fitter(capabilities.get(engine)) for engine, backend in backends().items()]


#: what ``place_file`` builds on a cache miss: see ``placement_cache.Place``
Built = tuple[PlacedManifest, Capabilities, Mapping[str, JobSource], float]


def place_file(path: str | Path | None = None) -> PlacedManifest:
    """``place(load(path))`` with each job's spec hash and rendered engine state, answered
    from the placement cache when nothing it depends on changed (``placement_cache`` lists
    what that is), and keeping the cached jobs whose text is unchanged when only the file
    changed (``job_sources``). The capabilities are read live either way."""
    shown = str(manifest_path(path))
    folder = getattr(settings, "ORCHESTRATOR_CACHE_DIR", "")
    try:
        data = Path(shown).read_bytes()
    except OSError:  # let the loader report the unreadable file, located
        data = None
    if not folder or data is None:
        manifest = load(shown)
        return placed_manifest(place(manifest), manifest.function_names())
    names = task_names()
    aliases = frozenset(settings.DATABASES)
    databases = database_names()
    connection_settings = {
        alias: {key: config.get(key) for key in ("NAME", "USER", "HOST", "PORT")}
        for alias, config in settings.DATABASES.items()
    }
    context = context_key(
        path=shown,
        task_names=names,
        aliases=aliases,
        database_names=databases,
        connection=connection_settings,
        settings=settings_stamp(
            {name: getattr(settings, name) for name in dir(settings) if name.isupper()}
        ),
        code=source_stamp(Path(settings.BASE_DIR) / root for root in _CODE_ROOTS),
    )

    def read(function_names: Collection[str]) -> Capabilities:
        needs = Needs(function_names=frozenset(function_names), database_names=databases)
        return {engine: backend.capabilities(needs) for engine, backend in backends().items()}

    def build(previous: Entry | None) -> Built:
        """Load and place the jobs ``previous`` does not hold unchanged (all without it)."""
        index = SourceIndex(context, previous.sources if previous is not None else None)
        manifest = with_upkeep(
            load_manifest_text(
                data,
                path=shown,
                task_names=names,
                database_aliases=aliases,
                clock=clock(),
                reuse=index,
            ),
            upkeep_manifest(task_names=names, database_aliases=aliases),
        )
        fresh_functions = {
            spec.name: job_functions(spec) for spec in manifest.jobs if spec.name in index.fresh
        }
        functions = manifest.function_names().union(
            *(source.functions for source, _ in index.hits.values())
        )
        capabilities = read(functions)
        kept = previous if index.hits else None
        if kept is not None and capabilities_stamp(capabilities) != kept.capabilities:
            # Another stamp: either the manifest calls other functions now (the kept jobs'
            # functions are among the old ones: asked again, they must read as before), or
            # the capabilities changed, and then every job is placed again.
            old = kept.manifest.function_names
            if functions == old or capabilities_stamp(read(old)) != kept.capabilities:
                return build(None)
        fresh = placed_manifest(place(manifest, capabilities), functions)
        until = valid_until(fresh.placed, time.time())  # in memory: only the fresh jobs
        sources = {
            name: source._replace(functions=fresh_functions[name])
            for name, source in index.fresh.items()
        }
        if kept is None:
            return fresh, capabilities, sources, until
        sources.update((name, source) for name, (source, _) in index.hits.items())
        listed = set(index.order)
        order = [*index.order, *(spec.name for spec in manifest.jobs if spec.name not in listed)]
        shifts = {
            name: (line - source.line, source.line, source.end)
            for name, (source, line) in index.hits.items()
        }
        combined = PlacedManifest.combine(order, fresh, kept.manifest, shifts, functions)
        return combined, capabilities, sources, min(until, kept.valid_until)

    with gc_paused():  # loading, hashing, rendering and pickling: see gc_pause
        result, _ = cached_placement(
            PlacementCache(Path(folder)),
            path=shown,
            key=entry_key(data=data, context=context),
            context=context,
            read_capabilities=read,
            place=build,
        )
    return result


def placed_manifest(placed: list[Placed], function_names: Collection[str]) -> PlacedManifest:
    """``placed`` with each job's spec hash and the state its engine would be given."""
    engines = backends()
    rendered = {
        job.spec.name: engines[job.engine].render(Desired(spec=job.spec, schedule=job.schedule))
        for job in placed
    }
    return PlacedManifest(
        placed,
        hashes={job.spec.name: spec_hash(job.spec) for job in placed},
        rendered=rendered,
        function_names=function_names,
    )


def place(manifest: Manifest, capabilities: Capabilities | None = None) -> list[Placed]:
    """Classify every job and ask its engine whether it can honour it; raise
    ``ManifestInvalid`` with every job that cannot be placed."""
    capabilities = capabilities if capabilities is not None else capabilities_for(manifest)
    placements, errors = classify_all(manifest.jobs, fitters(capabilities))
    engines = backends()
    for spec in manifest.jobs:
        placement = placements.get(spec.name)
        if placement is None:
            continue
        for field, message in engines[placement.target].problems(spec):
            errors.append(
                OrchestratorError(
                    message, path=spec.path, line=spec.line_of(field), job=spec.name, field=field
                )
            )
    if errors:
        raise ManifestInvalid(errors, path=manifest.path)
    return [
        Placed(
            spec=spec,
            engine=placements[spec.name].target,
            schedule=placements[spec.name].schedule,
            reasons=placements[spec.name].reasons,
        )
        for spec in manifest.jobs
    ]
