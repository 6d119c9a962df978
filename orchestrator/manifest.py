"""Load and validate ``jobs.yaml`` (manifest version 1) into immutable ``JobSpec``s.

Every problem is collected in one pass and raised together as ``ManifestInvalid``; each one is
located as ``PATH:LINE: job 'NAME': FIELD: message``. Duplicate keys are errors (never "last one
wins"), unknown fields are errors (with a suggestion), and hostile input (huge files, non-UTF-8,
NUL bytes, alias bombs, deep nesting) is refused by ``yaml_source`` with a line, quickly.

``defaults`` may set any field except a body (sql/task/command), a trigger (schedule/at/on),
``args`` and ``kwargs``; a job's own value replaces the default (lists are not merged). An
inherited value keeps the line of ``defaults``, so an error about it points there.

Each field is parsed by ``manifest_fields``; the rules that read a job's fields together (one
body, one trigger, nothing already past, the recurring-schedule options) are in
``manifest_checks``. This module walks the structure and builds the ``JobSpec``s.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from orchestrator import manifest_checks as checks
from orchestrator.errors import ManifestInvalid, OrchestratorError
from orchestrator.field_values import AlreadyReported, FieldError, integer, shorten, suggest
from orchestrator.gc_pause import gc_paused
from orchestrator.limits import Clock, text_problem
from orchestrator.manifest_fields import (
    BODY_PARSERS,
    JOB_FIELDS,
    NAME_PATTERN,
    NOT_IN_DEFAULTS,
    OPTION_PARSERS,
    TRIGGER_PARSERS,
    FieldContext,
)
from orchestrator.specs import JobSpec, SqlBody
from orchestrator.sql_analysis import analyse_sql
from orchestrator.yaml_source import DEFAULT_MAX_BYTES, Node, YamlProblem, compose

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = (1,)
TOP_LEVEL = ("version", "defaults", "jobs")


class JobReuse(Protocol):
    """Lets a caller keep jobs it already holds, valid, from an earlier load of the same file
    (``orchestrator.job_sources``): ``start`` sees the text and its tree, ``reused`` is asked
    about each job in order, and a job it answers ``True`` for is neither validated nor in
    the returned ``Manifest``."""

    def start(self, data: bytes, root: Node | None) -> None: ...

    def reused(self, name: str, key: Node) -> bool: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Manifest:
    """A valid manifest: its jobs in the order written."""

    path: str
    version: int
    jobs: tuple[JobSpec, ...]

    def __iter__(self) -> Iterator[JobSpec]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)

    def get(self, name: str) -> JobSpec | None:
        return next((job for job in self.jobs if job.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(job.name for job in self.jobs)

    def function_names(self) -> frozenset[str]:
        """Every function the SQL bodies call, for the capability lookup in ``pg_catalog``."""
        return frozenset().union(*(job_functions(job) for job in self.jobs))


def job_functions(spec: JobSpec) -> frozenset[str]:
    """The functions ``spec``'s SQL body calls (none for another body)."""
    if not isinstance(spec.body, SqlBody):
        return frozenset()
    return frozenset(ref.name for ref in analyse_sql(spec.body.sql).functions)


def load_manifest(
    path: str | Path,
    *,
    task_names: Collection[str] | None = None,
    database_aliases: Collection[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    clock: Clock | None = None,
) -> Manifest:
    """Read and validate the manifest at ``path``; raises ``ManifestInvalid``.

    ``task_names`` (the Celery app's registered tasks) and ``database_aliases`` (Django's
    ``DATABASES``) are checked when given; ``clock`` is what an ``at`` or ``expires`` must be
    later than (default: now, with no job applied before).
    """
    shown = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ManifestInvalid(
            [OrchestratorError(f"cannot read the manifest: {reason}", path=shown, line=1)],
            path=shown,
        ) from error
    return load_manifest_text(
        data,
        path=shown,
        task_names=task_names,
        database_aliases=database_aliases,
        max_bytes=max_bytes,
        clock=clock,
    )


def load_manifest_text(
    text: str | bytes,
    *,
    path: str = "<string>",
    task_names: Collection[str] | None = None,
    database_aliases: Collection[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    clock: Clock | None = None,
    reuse: JobReuse | None = None,
) -> Manifest:
    """Validate manifest text (``str`` or UTF-8 ``bytes``); raises ``ManifestInvalid``.

    ``reuse``: see ``JobReuse``; the manifest then holds only the jobs it did not keep."""
    data = text.encode("utf-8", errors="surrogatepass") if isinstance(text, str) else text
    loader = _Loader(path, task_names, database_aliases, clock or Clock(), reuse)
    with gc_paused():  # millions of long-lived objects and no cycles: see gc_pause
        try:
            root = compose(data, max_bytes=max_bytes)
        except YamlProblem as problem:
            error = OrchestratorError(shorten(problem.message), path=path, line=problem.line)
            raise ManifestInvalid([error], path=path) from None
        if reuse is not None:
            reuse.start(data, root)
        manifest = loader.manifest(root)
        del root
    if loader.errors or manifest is None:  # no manifest is built without an error saying why
        raise ManifestInvalid(loader.errors, path=path)
    logger.debug("loaded %d jobs from %s", len(manifest.jobs), path)
    return manifest


class _Loader:
    """One pass over the node tree, collecting every error."""

    def __init__(
        self,
        path: str,
        task_names: Collection[str] | None,
        database_aliases: Collection[str] | None,
        clock: Clock,
        reuse: JobReuse | None = None,
    ) -> None:
        self.path = path
        self.clock = clock
        self.reuse = reuse
        self.errors: list[OrchestratorError] = []
        self.task_names = frozenset(task_names) if task_names is not None else None
        self.aliases = frozenset(database_aliases) if database_aliases is not None else None

    def error(
        self, message: str, line: int, *, job: str | None = None, field: str | None = None
    ) -> None:
        self.errors.append(
            OrchestratorError(shorten(message), path=self.path, line=line, job=job, field=field)
        )

    # ------------------------------------------------------------------ structure

    def mapping(
        self, node: Node, *, job: str | None = None, field: str | None = None
    ) -> list[tuple[str, Node, Node]]:
        """(key, key node, value node) of a mapping; duplicate and non-string keys reported."""
        seen: dict[str, int] = {}
        result = []
        for key, value in node.pairs():
            if key.kind != "scalar":
                self.error("keys must be plain names", key.line, job=job, field=field)
                continue
            name = key.value
            problem = text_problem(name)
            if problem is not None:
                self.error(f"the key {name!r} {problem}", key.line, job=job, field=field)
                continue
            if name in seen:
                where = f"{field}.{name}" if field else name
                message = f"duplicate key {name!r} (first at line {seen[name]})"
                if field == "jobs":  # a job defined twice: say it about the job
                    job, where = name, "name"
                    message = f"the job is defined twice (first at line {seen[name]})"
                self.error(
                    message,
                    key.line,
                    job=job,
                    field=where,
                )
                continue
            seen[name] = key.line
            result.append((name, key, value))
        return result

    def manifest(self, root: Node | None) -> Manifest | None:
        if root is None:
            self.error("the manifest is empty; it needs 'version: 1' and 'jobs'", 1)
            return None
        if root.kind != "mapping":
            self.error(f"the manifest must be a mapping, got {root.describe()}", root.line)
            return None
        entries = {name: (key, value) for name, key, value in self.mapping(root)}
        for name, (key, _) in entries.items():
            if name not in TOP_LEVEL:
                self.error(
                    f"unknown top-level key {name!r}{suggest(name, TOP_LEVEL)}",
                    key.line,
                    field=name,
                )
        version = self.version(entries.get("version"), root)
        defaults = self.defaults(entries["defaults"][1]) if "defaults" in entries else {}
        if "jobs" not in entries:
            self.error("the manifest has no 'jobs'", root.line, field="jobs")
            return None
        jobs_node = entries["jobs"][1]
        if jobs_node.kind == "scalar" and jobs_node.resolved_tag().endswith(":null"):
            return Manifest(path=self.path, version=version, jobs=())
        if jobs_node.kind != "mapping":
            self.error(
                f"expected a mapping of job names to jobs, got {jobs_node.describe()}",
                jobs_node.line,
                field="jobs",
            )
            return None
        jobs = []
        for name, key, value in self.mapping(jobs_node, field="jobs"):
            if self.reuse is not None and self.reuse.reused(name, key):
                continue
            spec = self.job(name, key, value, defaults)
            if spec is not None:
                jobs.append(spec)
        return Manifest(path=self.path, version=version, jobs=tuple(jobs))

    def version(self, entry: tuple[Node, Node] | None, root: Node) -> int:
        if entry is None:
            self.error("the manifest needs 'version: 1'", root.line, field="version")
            return 1
        node = entry[1]
        try:
            value = integer(node, minimum=1)
        except FieldError as error:
            self.error(error.message, node.line, field="version")
            return 1
        if value not in SUPPORTED_VERSIONS:
            self.error(
                f"unsupported manifest version {value}; this release reads version 1",
                node.line,
                field="version",
            )
        return value

    def context(self, job: str | None, field: str) -> FieldContext:
        def report(message: str, line: int, suffix: str) -> None:
            self.error(message, line, job=job, field=field + suffix)

        return FieldContext(self.task_names, self.aliases, report)

    def parse(self, parser: Any, node: Node, *, job: str | None, field: str) -> tuple[bool, Any]:
        try:
            return True, parser(node, self.context(job, field))
        except FieldError as error:
            self.error(error.message, error.line or node.line, job=job, field=field + error.suffix)
        except AlreadyReported:
            pass
        return False, None

    # ------------------------------------------------------------------ defaults and jobs

    def defaults(self, node: Node) -> dict[str, tuple[Any, int]]:
        """Parsed default values with their lines; errors are reported here, once."""
        if node.kind != "mapping":
            self.error(f"expected a mapping, got {node.describe()}", node.line, field="defaults")
            return {}
        values: dict[str, tuple[Any, int]] = {}
        for name, key, value in self.mapping(node, field="defaults"):
            field = f"defaults.{name}"
            if name in NOT_IN_DEFAULTS:
                self.error(
                    f"{name!r} cannot be set in defaults; set it on each job", key.line, field=field
                )
            elif name not in OPTION_PARSERS:
                self.error(f"unknown field{suggest(name, OPTION_PARSERS)}", key.line, field=field)
            else:
                ok, parsed = self.parse(OPTION_PARSERS[name], value, job=None, field=field)
                if ok:
                    values[name] = (parsed, key.line)
        return values

    def job(
        self, name: str, key: Node, node: Node, defaults: dict[str, tuple[Any, int]]
    ) -> JobSpec | None:
        before = len(self.errors)
        if not NAME_PATTERN.match(name):
            self.error(
                "job names are 1 to 63 lower-case letters, digits, '-', '_' or '.', "
                "starting with a letter or digit",
                key.line,
                job=name,
                field="name",
            )
        if node.kind != "mapping":
            self.error(f"expected a mapping of fields, got {node.describe()}", node.line, job=name)
            return None
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        bodies: list[tuple[str, int]] = []
        triggers: list[tuple[str, int]] = []
        for field, field_key, value in self.mapping(node, job=name):
            if field not in JOB_FIELDS:
                self.error(
                    f"unknown field{suggest(field, JOB_FIELDS)}",
                    field_key.line,
                    job=name,
                    field=field,
                )
                continue
            if field in BODY_PARSERS:
                bodies.append((field, field_key.line))
            elif field in TRIGGER_PARSERS:
                triggers.append((field, field_key.line))
            parser = BODY_PARSERS.get(field) or TRIGGER_PARSERS.get(field) or OPTION_PARSERS[field]
            ok, parsed = self.parse(parser, value, job=name, field=field)
            lines[field] = field_key.line
            if ok:
                values[field] = parsed
        checks.exactly_one(self.error, name, key.line, bodies, "body", "sql, task or command")
        checks.exactly_one(
            self.error, name, key.line, triggers, "trigger", "schedule, at or 'on: startup'"
        )
        own = set(lines)
        for field, (value, line) in defaults.items():
            if field not in lines:
                values[field] = value
                lines[field] = line
        body = next((values[field] for field, _ in bodies if field in values), None)
        checks.task_arguments(self.error, name, body, values, lines)
        checks.not_past(self.error, name, values, lines, self.clock)
        trigger_value = next((values[f] for f, _ in triggers if f in values), None)
        checks.scheduling(self.error, name, trigger_value, values, lines, own)
        if len(self.errors) > before or body is None:  # exactly_one reported a missing body
            return None
        trigger = next(values[field] for field, _ in triggers)
        options = {field: values[field] for field in OPTION_PARSERS if field in values}
        return JobSpec(
            name=name,
            trigger=trigger,
            body=body,
            path=self.path,
            line=key.line,
            field_lines=MappingProxyType(lines),
            **options,
        )
