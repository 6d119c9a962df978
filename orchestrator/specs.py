"""Typed, immutable job specifications: what the manifest declares, and nothing else.

A ``JobSpec`` is the definition of one job after loading, validation and the merge of
``defaults``. It is frozen so that the classifier, the planner and the reconciler can pass it
around and compare it without defensive copies. ``to_dict``/``spec_hash`` give the canonical
JSON form of the *definition*: where the job was written (path, line) is deliberately left out,
so moving a job inside ``jobs.yaml`` is not a change, while editing any field is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal, TypeAlias

Target: TypeAlias = Literal["auto", "pg_cron", "celery"]
Overlap: TypeAlias = Literal["skip", "allow", "buffer_one", "cancel_other"]
#: the overlap modes, in Temporal's names (``ScheduleOverlapPolicy``)
OVERLAP_MODES: tuple[str, ...] = ("skip", "allow", "buffer_one", "cancel_other")
#: What beat does with the slots it missed while it was down (``docs/manifest.md``).
CatchUp: TypeAlias = Literal["none", "one", "all"]
#: The most missed slots ``catch_up: all`` runs when ``catch_up_limit`` is not set.
DEFAULT_CATCH_UP_LIMIT = 10

#: Everything a manifest value may hold once frozen: JSON scalars, tuples (for lists) and
#: ``JsonObject`` (for mappings). Frozen so that specs stay hashable and immutable.
FrozenJson: TypeAlias = "str | int | float | bool | tuple[FrozenJson, ...] | JsonObject | None"


@dataclass(frozen=True, slots=True)
class JsonObject:
    """An immutable JSON object: its items in the order they were written."""

    items: tuple[tuple[str, FrozenJson], ...] = ()

    def to_python(self) -> dict[str, object]:
        return {key: thaw(value) for key, value in self.items}


def freeze(value: object) -> FrozenJson:
    """Turn plain JSON data (dict/list/scalars) into its immutable form."""
    if isinstance(value, Mapping):
        return JsonObject(tuple((str(key), freeze(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"not JSON data: {type(value).__name__}")


def thaw(value: FrozenJson) -> object:
    """The plain, JSON-serialisable form of a frozen value (tuples become lists)."""
    if isinstance(value, JsonObject):
        return value.to_python()
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


# --------------------------------------------------------------------------- bodies


@dataclass(frozen=True, kw_only=True, slots=True)
class SqlBody:
    """SQL text, run as written (by pg_cron, or by a Celery task when the job goes there)."""

    sql: str


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskBody:
    """A registered Celery task, called with the job's ``args``/``kwargs``."""

    task: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CommandBody:
    """A program and its arguments, run without a shell by a built-in Celery task."""

    argv: tuple[str, ...]


Body: TypeAlias = SqlBody | TaskBody | CommandBody


# --------------------------------------------------------------------------- triggers


@dataclass(frozen=True, kw_only=True, slots=True)
class Cron:
    """A 5-field cron expression (or an ``@`` macro).

    ``expr`` is the normalised text (single spaces, names and macros in lower case) that engines
    receive and equality compares; ``source`` is what the manifest said, kept for messages.
    """

    expr: str
    source: str = field(default="", compare=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Every:
    """A fixed interval in seconds (``every 30s``, ``every 5m``, ``every 2h``)."""

    seconds: int


@dataclass(frozen=True, kw_only=True, slots=True)
class At:
    """One run at an aware instant (``at: 2025-06-01T03:00:00+02:00``)."""

    when: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Startup:
    """One run each time the application's workers start (``on: startup``)."""


Trigger: TypeAlias = Cron | Every | At | Startup


@dataclass(frozen=True, kw_only=True, slots=True)
class Retries:
    """Retry a failed run up to ``max`` times, waiting ``backoff * 2**attempt`` seconds."""

    max: int
    backoff: int = 0


#: what ``notify`` may be told about (``orchestrator.notify``)
NOTIFY_EVENTS: tuple[str, ...] = ("failed_final", "missed", "recovered")


@dataclass(frozen=True, kw_only=True, slots=True)
class Notify:
    """Whom to tell, and about what: e-mail addresses and one signed webhook.

    ``secret_env`` names the environment variable (``ORCHESTRATOR_NOTIFY_SECRET_*``) whose
    value signs the webhook's body; the secret itself is never in the manifest or registry.
    """

    events: tuple[str, ...] = NOTIFY_EVENTS
    email: tuple[str, ...] = ()
    webhook: str | None = None
    secret_env: str | None = None

    @classmethod
    def from_dict(cls, value: object) -> Notify | None:
        """The stored form (``to_dict``) read back; None for anything else."""
        if not isinstance(value, Mapping):
            return None
        hook = value.get("webhook")
        hook = hook if isinstance(hook, Mapping) else {}
        url, secret = hook.get("url"), hook.get("secret_env")
        return cls(
            events=tuple(str(e) for e in value.get("on") or () if e in NOTIFY_EVENTS),
            email=tuple(str(address) for address in value.get("email") or ()),
            webhook=url if isinstance(url, str) else None,
            secret_env=secret if isinstance(secret, str) else None,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "on": list(self.events),
            "email": list(self.email),
            "webhook": None
            if self.webhook is None
            else {"url": self.webhook, "secret_env": self.secret_env},
        }


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True, kw_only=True, slots=True)
class JobSpec:
    """One job of the manifest, validated, with ``defaults`` merged in.

    ``overlap`` left unset (``None``) means each engine's own behaviour for a run that comes due
    while the previous one is still running: pg_cron queues it, Celery starts it. ``skip``,
    ``allow``, ``buffer_one`` (at most one run waits while one runs; later slots are skipped)
    and ``cancel_other`` (a new run cancels the running one) are explicit requests that the
    classifier holds engines to.

    ``catch_up`` left unset means each engine's own behaviour after downtime: pg_cron runs none
    of the missed slots, Celery beat runs one. ``catch_up_limit`` bounds ``catch_up: all``;
    ``jitter`` is the most seconds a run starts after its slot (a fixed offset per job name).

    ``path``, ``line`` and ``field_lines`` say where the definition was written; they take no
    part in equality, so two specs are equal when their definitions are.
    """

    name: str
    trigger: Trigger
    body: Body
    target: Target = "auto"
    enabled: bool = True
    timezone: str = "UTC"
    queue: str | None = None
    args: tuple[FrozenJson, ...] = ()
    kwargs: JsonObject = JsonObject()
    retries: Retries | None = None
    timeout: int | None = None
    overlap: Overlap | None = None
    catch_up: CatchUp | None = None
    catch_up_limit: int | None = None
    jitter: int | None = None
    max_runs: int | None = None
    expires: datetime | None = None
    notify: Notify | None = None
    database: str = "default"
    tags: tuple[str, ...] = ()
    description: str = ""
    path: str = field(default="<memory>", compare=False)
    line: int = field(default=0, compare=False)
    field_lines: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({}), compare=False
    )

    def line_of(self, name: str) -> int:
        """The line where ``name`` was set (a ``defaults`` line when inherited), else the job's."""
        return self.field_lines.get(name, self.line)

    @property
    def body_field(self) -> str:
        """The manifest key of the body: ``sql``, ``task`` or ``command``."""
        return _BODY_FIELDS[type(self.body)]

    @property
    def trigger_field(self) -> str:
        """The manifest key of the trigger: ``schedule``, ``at`` or ``on``."""
        return _TRIGGER_FIELDS[type(self.trigger)]


_BODY_FIELDS: dict[type, str] = {SqlBody: "sql", TaskBody: "task", CommandBody: "command"}
_TRIGGER_FIELDS: dict[type, str] = {Cron: "schedule", Every: "schedule", At: "at", Startup: "on"}


# --------------------------------------------------------------------------- canonical form


def trigger_to_dict(trigger: Trigger) -> dict[str, object]:
    if isinstance(trigger, Cron):
        return {"kind": "cron", "expr": trigger.expr}
    if isinstance(trigger, Every):
        return {"kind": "every", "seconds": trigger.seconds}
    if isinstance(trigger, At):
        return {"kind": "at", "when": trigger.when.isoformat()}
    return {"kind": "startup"}


def body_to_dict(body: Body) -> dict[str, object]:
    if isinstance(body, SqlBody):
        return {"kind": "sql", "sql": body.sql}
    if isinstance(body, TaskBody):
        return {"kind": "task", "task": body.task}
    return {"kind": "command", "argv": list(body.argv)}


def to_dict(spec: JobSpec) -> dict[str, object]:
    """The canonical, JSON-serialisable definition of ``spec`` (no path or line).

    Keys are the manifest's field names, so a field-by-field diff of two of these dicts reads
    like the manifest. ``trigger`` and ``body`` are small dicts with a ``kind``. The scheduling
    options added later (``catch_up``, ``catch_up_limit``, ``jitter``) appear only when set, so
    the hash of a job that does not use them is what it was before they existed.
    """
    document: dict[str, object] = {
        "name": spec.name,
        "trigger": trigger_to_dict(spec.trigger),
        "body": body_to_dict(spec.body),
        "target": spec.target,
        "enabled": spec.enabled,
        "timezone": spec.timezone,
        "queue": spec.queue,
        "args": thaw(spec.args),
        "kwargs": spec.kwargs.to_python(),
        "retries": (
            None
            if spec.retries is None
            else {"max": spec.retries.max, "backoff": spec.retries.backoff}
        ),
        "timeout": spec.timeout,
        "overlap": spec.overlap,
        "max_runs": spec.max_runs,
        "expires": None if spec.expires is None else spec.expires.isoformat(),
        "database": spec.database,
        "tags": list(spec.tags),
        "description": spec.description,
        **{
            key: value
            for key, value in (
                ("catch_up", spec.catch_up),
                ("catch_up_limit", spec.catch_up_limit),
                ("jitter", spec.jitter),
            )
            if value is not None
        },
    }
    if spec.notify is not None:  # only when set: the definitions applied before keep their hash
        document["notify"] = spec.notify.to_dict()
    return document


def canonical_json(spec: JobSpec) -> str:
    """``to_dict`` as compact JSON with sorted keys: the same definition, the same text."""
    return json.dumps(to_dict(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(spec: JobSpec) -> str:
    """SHA-256 (hex) of ``canonical_json``: what the registry stores to notice changes."""
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()
