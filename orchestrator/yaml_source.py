"""Hostile-input-safe YAML composition that keeps the line of every key and value.

The manifest is read from libyaml's event stream (PyYAML's C parser) into small ``Node``
objects, instead of ``yaml.compose``: building nodes from events here is several times faster
than PyYAML's composer, and it lets every limit be enforced *while* reading, before anything
large is built:

* a size cap, checked before parsing;
* UTF-8 only, no NUL bytes: either is reported with its line;
* anchors and aliases refused outright (no alias bombs, no shared nodes);
* explicit tags refused except YAML's own core ones (no ``!!python/object``);
* nesting depth bounded (libyaml's own composer recurses in C and crashes the interpreter on
  deep enough nesting), and the node count bounded in proportion to the file's size (see
  ``node_limit``), so memory stays proportional to the text whatever its shape;
* one document only.

Every failure is a ``YamlProblem`` with a 1-based line, never a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import Resolver

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_DEPTH = 32
#: the node budget of any file, however small
DEFAULT_MAX_NODES = 1_000_000
#: beyond that, one node per this many bytes of text. A real manifest spends well over four
#: bytes a node ("a: b" is two nodes in five bytes with its newline; a job of the shipped
#: catalog about twenty), while the densest YAML ("[1,1,1,...]") packs one per two bytes: only
#: such filler reaches the limit, and with the byte cap it keeps a file under about a
#: gigabyte of nodes.
BYTES_PER_NODE = 4

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "seq", "map")
)
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()


class YamlProblem(Exception):
    """The text is not YAML this loader accepts; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(slots=True)
class Node:
    """A scalar (``value`` is its text), mapping (``items``: key, value, key, value ...) or
    sequence (``items``). ``line`` is where the node starts, 1-based; ``index`` and ``end`` are
    character offsets in the text where it starts and (collections only) ends, so a part of
    the file can be recognised by its text (``job_sources``). They are recorded for the top
    three levels only (the document, its keys and values, and theirs: each job's key): an
    offset is an int object of its own, and a million deeper nodes would carry one each."""

    kind: str  # "scalar" | "mapping" | "sequence"
    line: int
    value: str = ""
    style: str | None = None  # a scalar's style; "flow" for a flow collection, else None
    tag: str | None = None
    plain: bool = False  # a plain scalar: its type comes from YAML's implicit resolution
    items: list[Node] = field(default_factory=list)
    index: int = 0
    end: int = 0

    @property
    def content_line(self) -> int:
        """The line where a scalar's text starts (a block scalar's starts after ``|``/``>``)."""
        return self.line + 1 if self.style in {"|", ">"} else self.line

    def pairs(self) -> Iterator[tuple[Node, Node]]:
        items = iter(self.items)
        return zip(items, items, strict=False)

    def describe(self) -> str:
        """What the node is, for "expected X, got Y" messages."""
        if self.kind != "scalar":
            return "a mapping" if self.kind == "mapping" else "a list"
        return _TYPE_NAMES.get(self.resolved_tag(), "a value")

    def resolved_tag(self) -> str:
        if self.kind != "scalar":
            return _CORE + ("map" if self.kind == "mapping" else "seq")
        if self.tag == "!":  # the non-specific tag: a string
            return _CORE + "str"
        if self.tag:
            return self.tag
        if self.plain:
            return _RESOLVER.resolve(yaml.ScalarNode, self.value, (True, False))
        return _CORE + "str"

    def scalar(self) -> object:
        """The Python value of a scalar, as PyYAML's safe loader would construct it."""
        tag = self.resolved_tag()
        if tag == _CORE + "str":
            return self.value
        if tag == _CORE + "null":
            return None
        node = yaml.ScalarNode(tag, self.value)
        try:
            if tag == _CORE + "bool":
                return _CONSTRUCTOR.construct_yaml_bool(node)
            if tag == _CORE + "int":
                return _CONSTRUCTOR.construct_yaml_int(node)
            if tag == _CORE + "float":
                return _CONSTRUCTOR.construct_yaml_float(node)
            if tag == _CORE + "timestamp":
                return _CONSTRUCTOR.construct_yaml_timestamp(node)
        except (ConstructorError, ValueError) as error:
            raise YamlProblem(f"cannot read {self.value!r}: {error}", self.line) from error
        return self.value


_TYPE_NAMES = {
    _CORE + "str": "a string",
    _CORE + "int": "an integer",
    _CORE + "float": "a number",
    _CORE + "bool": "a boolean",
    _CORE + "null": "null",
    _CORE + "timestamp": "a date/time",
}


def is_finite(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def check_bytes(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Refuse oversized, NUL-carrying and non-UTF-8 input, each with its line."""
    if len(data) > max_bytes:
        raise YamlProblem(
            f"the file is {len(data)} bytes; manifests are limited to {max_bytes} bytes", 1
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise YamlProblem("NUL byte in the file (is it UTF-16 or binary?)", line)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start]
        raise YamlProblem(f"not UTF-8: byte 0x{byte:02x} cannot be decoded", line) from error


def node_limit(size: int) -> int:
    """How many YAML nodes a file of ``size`` bytes may hold."""
    return max(DEFAULT_MAX_NODES, size // BYTES_PER_NODE)


def compose(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_nodes: int | None = None,
) -> Node | None:
    """The single document of ``data`` as a ``Node`` tree (``None`` when empty).

    ``max_nodes`` defaults to ``node_limit(len(data))``.
    """
    check_bytes(data, max_bytes=max_bytes)
    if max_nodes is None:
        max_nodes = node_limit(len(data))
    root: Node | None = None
    stack: list[Node] = []
    documents = 0
    count = 0
    try:
        for event in yaml.parse(data, Loader=Loader):
            kind = type(event)
            if kind is yaml.ScalarEvent or kind in _STARTS:
                line = event.start_mark.line + 1
                _check_properties(event, line)
                count += 1
                if count > max_nodes:
                    raise YamlProblem(
                        f"more than {max_nodes:,} YAML nodes in {len(data):,} bytes; a "
                        f"manifest may hold {DEFAULT_MAX_NODES:,} nodes, or one per "
                        f"{BYTES_PER_NODE} bytes of text in a larger file",
                        line,
                    )
                if kind is yaml.ScalarEvent:
                    node = Node(
                        "scalar",
                        line,
                        value=event.value,
                        style=event.style or None,
                        tag=event.tag,
                        plain=bool(event.implicit and event.implicit[0]) and not event.tag,
                        index=event.start_mark.index if len(stack) <= _POSITIONS else 0,
                    )
                else:
                    if len(stack) >= max_depth:
                        raise YamlProblem(f"nesting deeper than {max_depth} levels", line)
                    node = Node(
                        _STARTS[kind],
                        line,
                        tag=event.tag,
                        style="flow" if event.flow_style else None,
                        index=event.start_mark.index if len(stack) <= _POSITIONS else 0,
                    )
                if stack:
                    stack[-1].items.append(node)
                else:
                    root = node
                if kind is not yaml.ScalarEvent:
                    stack.append(node)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                ended = stack.pop()
                if len(stack) < _POSITIONS:
                    ended.end = event.start_mark.index
            elif kind is yaml.AliasEvent:
                raise YamlProblem(
                    f"aliases (*{event.anchor}) are not allowed in a manifest",
                    event.start_mark.line + 1,
                )
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise YamlProblem(
                        "a manifest is one YAML document; found a second one",
                        event.start_mark.line + 1,
                    )
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(part for part in (error.problem, error.context) if part)
        raise YamlProblem(f"invalid YAML: {problem or error}", line) from error
    except yaml.reader.ReaderError as error:
        line = data.count(b"\n", 0, max(error.position, 0)) + 1
        raise YamlProblem(f"invalid YAML: {error.reason}", line) from error
    except yaml.YAMLError as error:
        raise YamlProblem(f"invalid YAML: {error}", 1) from error
    return root


_STARTS = {yaml.MappingStartEvent: "mapping", yaml.SequenceStartEvent: "sequence"}
#: nodes created with at most this many open collections above them get their offsets
_POSITIONS = 2


def _check_properties(event: yaml.NodeEvent, line: int) -> None:
    if event.anchor is not None:
        raise YamlProblem(
            f"anchors (&{event.anchor}) and aliases are not allowed in a manifest", line
        )
    tag = getattr(event, "tag", None)
    if tag is not None and tag not in _ALLOWED_TAGS and tag != "!":
        raise YamlProblem(f"the YAML tag {tag!r} is not allowed in a manifest", line)
