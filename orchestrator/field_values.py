"""The readers every manifest field parser is built from: one YAML scalar or JSON node in, a
typed value out, or a ``FieldError`` at the node's line.

They are kept apart from the field parsers (``manifest_fields``) because the notify parser,
the manifest's cross-field checks and the CLI's suggestions use them too, and because what a
storable string, an integer or a duration is must be decided once for every field.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

from orchestrator.limits import number_problem, text_problem
from orchestrator.schedules import ScheduleError, parse_duration
from orchestrator.yaml_source import Node, YamlProblem, is_finite

#: The longest duration (timeout, backoff): a year; longer ones only overflow the engines' clocks.
MAX_DURATION_SECONDS = 366 * 24 * 3600


class FieldError(Exception):
    """A field's value is wrong; ``line`` overrides the node's line, ``suffix`` names a part."""

    def __init__(self, message: str, *, line: int | None = None, suffix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.suffix = suffix


class AlreadyReported(Exception):
    """The parser reported its errors itself."""


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


def scalar_value(node: Node) -> object:
    try:
        return node.scalar()
    except YamlProblem as problem:
        raise FieldError(problem.message) from problem


def integer(node: Node, *, minimum: int, maximum: int | None = None) -> int:
    value = scalar_value(node) if node.kind == "scalar" else None
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
    value = scalar_value(node) if node.kind == "scalar" else None
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
    value = scalar_value(node)
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
