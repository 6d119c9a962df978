"""One parser per manifest field: a YAML node in, a typed value out, or a located complaint.

Each parser either returns the field's value or raises ``FieldError`` (one message, at the
node's line unless it says otherwise). SQL bodies can hold several problems at once; their
parser reports each through ``FieldContext.report`` and then raises ``AlreadyReported``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from orchestrator.field_values import (
    AlreadyReported,
    FieldError,
    choice,
    duration,
    integer,
    json_value,
    raw_text,
    scalar_value,
    suggest,
    text,
)
from orchestrator.notify_field import parse_notify
from orchestrator.schedules import (
    ScheduleError,
    parse_at,
    parse_instant,
    parse_schedule,
    zone,
)
from orchestrator.specs import (
    OVERLAP_MODES,
    CommandBody,
    JsonObject,
    Retries,
    SqlBody,
    Startup,
    TaskBody,
    freeze,
)
from orchestrator.sql_analysis import SqlSyntaxError, analyse_sql, line_and_column
from orchestrator.yaml_source import Node

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}$")
MAX_RETRIES = 100
MAX_TAG_LENGTH = 63
#: django-celery-beat counts runs in a 32-bit column.
MAX_RUNS = 2**31 - 1
#: The most missed slots ``catch_up: all`` may run after downtime (each is one message).
MAX_CATCH_UP_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class FieldContext:
    """What parsers need beyond the node: registered names, and a way to report many errors."""

    task_names: Collection[str] | None
    database_aliases: Collection[str] | None
    report: Callable[[str, int, str], None]  # (message, line, field suffix)


Parser = Callable[[Node, FieldContext], Any]


# --------------------------------------------------------------------------- fields


def parse_target(node: Node, ctx: FieldContext) -> str:
    return choice(node, ("auto", "pg_cron", "celery"))


def parse_enabled(node: Node, ctx: FieldContext) -> bool:
    value = scalar_value(node) if node.kind == "scalar" else None
    if not isinstance(value, bool):
        raise FieldError(f"expected true or false, got {node.describe()}")
    return value


def parse_timezone(node: Node, ctx: FieldContext) -> str:
    name = text(node, what="an IANA time zone name")
    try:
        zone(name)
    except ScheduleError as error:
        raise FieldError(str(error)) from error
    return name


def parse_queue(node: Node, ctx: FieldContext) -> str:
    name = text(node, what="a queue name")
    if not _QUEUE.match(name):
        raise FieldError(f"{name!r} is not a queue name (letters, digits, _ . : @ -)")
    return name


def parse_args(node: Node, ctx: FieldContext) -> tuple[object, ...]:
    if node.kind != "sequence":
        raise FieldError(f"expected a list, got {node.describe()}")
    frozen = freeze(json_value(node))
    return frozen if isinstance(frozen, tuple) else ()


def parse_kwargs(node: Node, ctx: FieldContext) -> JsonObject:
    if node.kind != "mapping":
        raise FieldError(f"expected a mapping, got {node.describe()}")
    frozen = freeze(json_value(node))
    return frozen if isinstance(frozen, JsonObject) else JsonObject()


def parse_retries(node: Node, ctx: FieldContext) -> Retries | None:
    if node.kind != "mapping":
        raise FieldError(f"expected a mapping {{max: N, backoff: SECONDS}}, got {node.describe()}")
    values: dict[str, Node] = {}
    for key, child in node.pairs():
        name = key.value if key.kind == "scalar" else "?"
        if name not in {"max", "backoff"}:
            raise FieldError(
                f"unknown field {name!r}{suggest(name, ('max', 'backoff'))}; "
                "retries take max and backoff",
                line=key.line,
            )
        if name in values:
            raise FieldError(f"duplicate key {name!r}", line=key.line)
        values[name] = child
    if "max" not in values:
        raise FieldError("needs max (the number of retries)")
    try:
        count = integer(values["max"], minimum=0, maximum=MAX_RETRIES)
    except FieldError as error:
        raise FieldError(error.message, line=values["max"].line, suffix=".max") from error
    backoff = 0
    if "backoff" in values:
        backoff_node = values["backoff"]
        value = scalar_value(backoff_node) if backoff_node.kind == "scalar" else None
        if value == 0 and not isinstance(value, bool):
            backoff = 0
        else:
            try:
                backoff = duration(backoff_node)
            except FieldError as error:
                raise FieldError(
                    error.message, line=backoff_node.line, suffix=".backoff"
                ) from error
    return None if count == 0 else Retries(max=count, backoff=backoff)


def parse_timeout(node: Node, ctx: FieldContext) -> int:
    return duration(node)


def parse_overlap(node: Node, ctx: FieldContext) -> str:
    return choice(node, OVERLAP_MODES)


def parse_catch_up(node: Node, ctx: FieldContext) -> str:
    return choice(node, ("none", "one", "all"))


def parse_catch_up_limit(node: Node, ctx: FieldContext) -> int:
    return integer(node, minimum=1, maximum=MAX_CATCH_UP_LIMIT)


def parse_jitter(node: Node, ctx: FieldContext) -> int:
    """A duration; whether it fits the job's period is checked with the schedule (manifest)."""
    return duration(node)


def parse_max_runs(node: Node, ctx: FieldContext) -> int:
    return integer(node, minimum=1, maximum=MAX_RUNS)


def parse_expires(node: Node, ctx: FieldContext) -> object:
    try:
        return parse_instant(raw_text(node, what="an ISO 8601 date-time with offset"))
    except ScheduleError as error:
        raise FieldError(str(error)) from error


def parse_database(node: Node, ctx: FieldContext) -> str:
    alias = text(node, what="a database alias")
    if ctx.database_aliases is not None and alias not in ctx.database_aliases:
        known = ", ".join(sorted(ctx.database_aliases))
        raise FieldError(f"no database alias {alias!r} in DATABASES (known: {known})")
    return alias


def parse_tags(node: Node, ctx: FieldContext) -> tuple[str, ...]:
    if node.kind != "sequence":
        raise FieldError(f"expected a list of strings, got {node.describe()}")
    tags = []
    for item in node.items:
        tag = text(item, what="a string")
        if not tag or len(tag) > MAX_TAG_LENGTH:
            raise FieldError(f"tags are 1 to {MAX_TAG_LENGTH} characters", line=item.line)
        tags.append(tag)
    return tuple(dict.fromkeys(tags))


def parse_description(node: Node, ctx: FieldContext) -> str:
    return text(node)


def parse_sql(node: Node, ctx: FieldContext) -> SqlBody:
    sql = text(node, what="SQL text")
    if not sql.strip():
        raise FieldError("the SQL is empty")
    try:
        facts = analyse_sql(sql)
    except SqlSyntaxError as error:
        line = node.content_line
        if error.offset is not None:
            line += line_and_column(sql, error.offset)[0] - 1
        raise FieldError(f"invalid SQL: {error.message}", line=line) from error
    problems = facts.problems()
    for problem in problems:
        ctx.report(
            problem.message, node.content_line + line_and_column(sql, problem.offset)[0] - 1, ""
        )
    if problems:
        raise AlreadyReported
    return SqlBody(sql=sql)


def parse_task(node: Node, ctx: FieldContext) -> TaskBody:
    name = text(node, what="a Celery task name")
    if not _TASK_NAME.match(name):
        raise FieldError(f"{name!r} is not a task name (dotted Python identifiers)")
    if ctx.task_names is not None and name not in ctx.task_names:
        raise FieldError(
            f"no task {name!r} is registered in the Celery app{suggest(name, ctx.task_names)}"
        )
    return TaskBody(task=name)


def parse_command(node: Node, ctx: FieldContext) -> CommandBody:
    if node.kind == "sequence":
        argv = [text(item, what="a string") for item in node.items]
    else:
        line = text(node, what="a command line or a list of arguments")
        try:
            argv = shlex.split(line)
        except ValueError as error:
            raise FieldError(f"cannot split the command line: {error}") from error
    if not argv or not argv[0]:
        raise FieldError("the command is empty")
    return CommandBody(argv=tuple(argv))


def parse_schedule_field(node: Node, ctx: FieldContext) -> object:
    try:
        return parse_schedule(raw_text(node, what="a cron expression or 'every N'"))
    except ScheduleError as error:
        raise FieldError(str(error)) from error


def parse_at_field(node: Node, ctx: FieldContext) -> object:
    try:
        return parse_at(raw_text(node, what="an ISO 8601 date-time with offset"))
    except ScheduleError as error:
        raise FieldError(str(error)) from error


def parse_on(node: Node, ctx: FieldContext) -> Startup:
    if raw_text(node, what="'startup'") != "startup":
        raise FieldError(f"the only event is 'startup', got {node.value!r}")
    return Startup()


BODY_PARSERS: dict[str, Parser] = {"sql": parse_sql, "task": parse_task, "command": parse_command}
TRIGGER_PARSERS: dict[str, Parser] = {
    "schedule": parse_schedule_field,
    "at": parse_at_field,
    "on": parse_on,
}
OPTION_PARSERS: dict[str, Parser] = {
    "target": parse_target,
    "enabled": parse_enabled,
    "timezone": parse_timezone,
    "queue": parse_queue,
    "args": parse_args,
    "kwargs": parse_kwargs,
    "retries": parse_retries,
    "timeout": parse_timeout,
    "overlap": parse_overlap,
    "catch_up": parse_catch_up,
    "catch_up_limit": parse_catch_up_limit,
    "jitter": parse_jitter,
    "max_runs": parse_max_runs,
    "expires": parse_expires,
    "notify": parse_notify,
    "database": parse_database,
    "tags": parse_tags,
    "description": parse_description,
}
JOB_FIELDS = (*BODY_PARSERS, *TRIGGER_PARSERS, *OPTION_PARSERS)
#: Fields that make no sense shared by every job.
NOT_IN_DEFAULTS = (*BODY_PARSERS, *TRIGGER_PARSERS, "args", "kwargs")
