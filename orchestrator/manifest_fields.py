"""One parser per manifest field: a YAML node in, a typed value out, or a located complaint.

Each parser either returns the field's value or raises ``FieldError`` (one message, at the
node's line unless it says otherwise). SQL bodies can hold several problems at once; their
parser reports each through ``FieldContext.report`` and then raises ``AlreadyReported``.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from orchestrator.limits import number_problem, text_problem
from orchestrator.schedules import (
    ScheduleError,
    parse_at,
    parse_duration,
    parse_instant,
    parse_schedule,
    zone,
)
from orchestrator.specs import (
    NOTIFY_EVENTS,
    OVERLAP_MODES,
    CommandBody,
    JsonObject,
    Notify,
    Retries,
    SqlBody,
    Startup,
    TaskBody,
    freeze,
)
from orchestrator.sql_analysis import SqlSyntaxError, analyse_sql, line_and_column
from orchestrator.yaml_source import Node, YamlProblem, is_finite

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}$")
MAX_RETRIES = 100
MAX_TAG_LENGTH = 63
#: The longest duration (timeout, backoff): a year; longer ones only overflow the engines' clocks.
MAX_DURATION_SECONDS = 366 * 24 * 3600
#: django-celery-beat counts runs in a 32-bit column.
MAX_RUNS = 2**31 - 1
#: The most missed slots ``catch_up: all`` may run after downtime (each is one message).
MAX_CATCH_UP_LIMIT = 1000


class FieldError(Exception):
    """A field's value is wrong; ``line`` overrides the node's line, ``suffix`` names a part."""

    def __init__(self, message: str, *, line: int | None = None, suffix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.suffix = suffix


class AlreadyReported(Exception):
    """The parser reported its errors itself."""


@dataclass(frozen=True, slots=True)
class FieldContext:
    """What parsers need beyond the node: registered names, and a way to report many errors."""

    task_names: Collection[str] | None
    database_aliases: Collection[str] | None
    report: Callable[[str, int, str], None]  # (message, line, field suffix)


Parser = Callable[[Node, FieldContext], Any]


# --------------------------------------------------------------------------- scalars


def storable(value: str, node: Node) -> str:
    """``value`` when PostgreSQL can store it as text; a NUL written as a YAML escape
    (``"a\\0b"``) passes YAML and would fail the apply, so it is refused here, at its line."""
    problem = text_problem(value)
    if problem is not None:
        raise FieldError(f"{shorten(repr(value), 80)} {problem}", line=node.line)
    return value


def text(node: Node, *, what: str = "a string") -> str:
    """A string; other scalars (numbers, booleans) must be quoted to be strings."""
    if node.kind != "scalar" or node.resolved_tag() != "tag:yaml.org,2002:str":
        raise FieldError(f"expected {what}, got {node.describe()}")
    return storable(node.value, node)


def raw_text(node: Node, *, what: str) -> str:
    """The scalar's text as written, whatever YAML would make of it (dates, numbers)."""
    if node.kind != "scalar":
        raise FieldError(f"expected {what}, got {node.describe()}")
    return storable(node.value, node)


def _scalar_value(node: Node) -> object:
    try:
        return node.scalar()
    except YamlProblem as problem:
        raise FieldError(problem.message) from problem


def integer(node: Node, *, minimum: int, maximum: int | None = None) -> int:
    value = _scalar_value(node) if node.kind == "scalar" else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"expected an integer, got {node.describe()}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise FieldError(f"must be at least {minimum}{upper}, got {value}")
    return value


def choice(node: Node, options: tuple[str, ...]) -> str:
    value = text(node, what="one of " + ", ".join(options))
    if value not in options:
        raise FieldError(f"must be one of {', '.join(options)}, got {value!r}")
    return value


def duration(node: Node) -> int:
    value = _scalar_value(node) if node.kind == "scalar" else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FieldError(f"expected a duration such as 30s, 15m or 2h, got {node.describe()}")
    try:
        seconds = parse_duration(value)
    except ScheduleError as error:
        raise FieldError(str(error)) from error
    if seconds > MAX_DURATION_SECONDS:
        raise FieldError(f"{shorten(str(value), 80)} is longer than the 366 days a duration may be")
    return seconds


MAX_MESSAGE = 1000


def shorten(message: str, limit: int = MAX_MESSAGE) -> str:
    """A message that echoes a huge value (a 10 MB token) keeps its start and end only."""
    if len(message) <= limit:
        return message
    keep = (limit - 5) // 2
    return f"{message[:keep]} ... {message[-keep:]}"


def suggest(word: str, options: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- JSON values


def json_value(node: Node) -> object:
    """Plain JSON data from YAML: strings, finite numbers, booleans, null, lists, mappings."""
    if node.kind == "sequence":
        return [json_value(item) for item in node.items]
    if node.kind == "mapping":
        result: dict[str, object] = {}
        for key, item in node.pairs():
            name = text(key, what="a string key")
            if name in result:
                raise FieldError(f"duplicate key {name!r}", line=key.line)
            result[name] = json_value(item)
        return result
    value = _scalar_value(node)
    if isinstance(value, str):
        return storable(value, node)
    if isinstance(value, int | float) and not isinstance(value, bool) and is_finite(value):
        problem = number_problem(value)
        if problem is not None:
            raise FieldError(f"{shorten(node.value, 80)} {problem}", line=node.line)
        return value
    if value is None or isinstance(value, bool):
        return value
    raise FieldError(
        f"{node.value!r} is {node.describe()} to YAML, which JSON cannot carry; quote it",
        line=node.line,
    )


# --------------------------------------------------------------------------- fields


def parse_target(node: Node, ctx: FieldContext) -> str:
    return choice(node, ("auto", "pg_cron", "celery"))


def parse_enabled(node: Node, ctx: FieldContext) -> bool:
    value = _scalar_value(node) if node.kind == "scalar" else None
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
        value = _scalar_value(backoff_node) if backoff_node.kind == "scalar" else None
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


_SECRET_ENV = re.compile(r"^ORCHESTRATOR_NOTIFY_SECRET_[A-Z0-9_]+$")
_NOTIFY_KEYS = ("on", "email", "webhook")
_WEBHOOK_KEYS = ("url", "secret_env")


def _keyed(node: Node, allowed: tuple[str, ...], what: str) -> dict[str, Node]:
    """A mapping's values by key: unknown and duplicate keys refused at their line."""
    if node.kind != "mapping":
        raise FieldError(f"expected a mapping ({', '.join(allowed)}), got {node.describe()}")
    values: dict[str, Node] = {}
    for key, child in node.pairs():
        name = key.value if key.kind == "scalar" else "?"
        if name == "secret":
            raise FieldError(
                "a secret never goes in the manifest: put it in an environment variable "
                "ORCHESTRATOR_NOTIFY_SECRET_<NAME> and name it with secret_env",
                line=key.line,
                suffix=f".{name}",
            )
        if name not in allowed:
            raise FieldError(
                f"unknown field {name!r}{suggest(name, allowed)}; {what} " + ", ".join(allowed),
                line=key.line,
            )
        if name in values:
            raise FieldError(f"duplicate key {name!r}", line=key.line)
        values[name] = child
    return values


def parse_notify(node: Node, ctx: FieldContext) -> Notify:
    """``notify: {on: [...], email: [...], webhook: {url, secret_env}}``; see docs/manifest.md."""
    values = _keyed(node, _NOTIFY_KEYS, "notify takes")
    events = NOTIFY_EVENTS
    if "on" in values:
        items = values["on"].items if values["on"].kind == "sequence" else [values["on"]]
        try:
            events = tuple(dict.fromkeys(choice(item, NOTIFY_EVENTS) for item in items))
        except FieldError as error:
            raise FieldError(error.message, line=values["on"].line, suffix=".on") from error
        if not events:
            raise FieldError("name at least one event", line=values["on"].line, suffix=".on")
    emails: list[str] = []
    if "email" in values:
        email_node = values["email"]
        items = email_node.items if email_node.kind == "sequence" else [email_node]
        for item in items:
            try:
                address = text(item, what="an e-mail address")
                validate_email(address)
            except FieldError as error:
                raise FieldError(error.message, line=item.line, suffix=".email") from error
            except ValidationError as error:
                raise FieldError(
                    f"{shorten(repr(item.value), 80)} is not an e-mail address",
                    line=item.line,
                    suffix=".email",
                ) from error
            emails.append(address)
    url = secret_env = None
    if "webhook" in values:
        hook = values["webhook"]
        try:
            parts = _keyed(hook, _WEBHOOK_KEYS, "a webhook takes")
        except FieldError as error:
            raise FieldError(
                error.message, line=error.line or hook.line, suffix=".webhook" + error.suffix
            ) from error
        url, secret_env = _webhook(hook, parts)
    if not emails and url is None:
        raise FieldError("needs email or webhook (or both): whom to tell")
    return Notify(events=events, email=tuple(emails), webhook=url, secret_env=secret_env)


def _webhook(hook: Node, parts: dict[str, Node]) -> tuple[str, str]:
    if "url" not in parts or "secret_env" not in parts:
        raise FieldError(
            "a webhook needs url and secret_env (the variable holding its signing secret)",
            line=hook.line,
            suffix=".webhook",
        )
    url = text(parts["url"], what="an http(s) URL")
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest.split("/")[0]:
        raise FieldError(
            f"{shorten(url, 80)!r} is not an http(s) URL", line=parts["url"].line,
            suffix=".webhook.url",
        )  # fmt: skip
    secret_env = text(parts["secret_env"], what="an environment variable's name")
    if not _SECRET_ENV.match(secret_env):
        raise FieldError(
            f"{shorten(secret_env, 80)!r}: name an environment variable "
            "ORCHESTRATOR_NOTIFY_SECRET_<NAME> (upper-case letters, digits, _); the manifest "
            "names the secret, never holds it",
            line=parts["secret_env"].line,
            suffix=".webhook.secret_env",
        )
    return url, secret_env


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
