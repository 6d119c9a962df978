"""Recognise the jobs of a manifest that are written exactly as at the last load.

Editing one job of 10,000 used to cost a full load: every job validated, classified, hashed
and rendered again. The placement cache keeps, for each job, a digest of the text that
defines it (``JobSource``); at the next load the file is still parsed whole (YAML's structure
and every cross-job check, such as a name written twice, need the whole text), but a job
whose digest is the same is taken from the cache instead of being validated and placed again.

What the digest covers, so that equal digests mean an equal job:

* the job's own text: from the start of its key's line to the start of the next job's key's
  line (the last job: to the end of the ``jobs`` mapping), comments and indentation included;
* everything of the file outside the ``jobs`` mapping (``version``, ``defaults``: a job
  inherits from them), and the line of ``defaults`` (an inherited field points at it);
* the cache's context key: the path, the task names and database aliases validation checks
  against, the settings, the code (``placement_cache.entry_key``).

A block mapping's value is read the same wherever it stands when its text and indentation
are the same, so only the job's position can differ: a job that moved by some lines keeps
its definition and hash, and its lines are shifted when it is materialised
(``placed_manifest``). Flow-style ``jobs`` (``{...}``) and keys that do not start their line
are never reused: their text alone does not delimit them.

The engines' capabilities are not in the digest: the caller compares them whole, and any
difference places every job again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import NamedTuple

from orchestrator.yaml_source import Node


class JobSource(NamedTuple):
    """Where a cached job came from: its text's digest, and the lines its stored ``Placed``
    was written at (``line``: its key; ``end``: the last line of its text, so a field line
    outside ``line..end`` is inherited from ``defaults``), and the functions its SQL calls.
    A tuple: an entry holds one per job, and tuples pickle in C."""

    digest: str
    line: int
    end: int
    functions: frozenset[str] = frozenset()


def _digest(prefix: hashlib.blake2b, text: str) -> str:
    digest = prefix.copy()
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class SourceIndex:
    """The ``JobReuse`` of one load (see ``manifest.JobReuse``).

    ``known``: the sources of the jobs held from the last load (name -> ``JobSource``).
    After the load: ``order`` names every job in manifest order, ``hits`` the kept ones (name
    -> (its ``JobSource``, the line its key is at now)), ``fresh`` the others (name -> the
    ``JobSource`` to store once it is placed, without its functions)."""

    def __init__(self, context: str, known: Mapping[str, JobSource] | None = None) -> None:
        self.context = context
        self.known = known or {}
        self.order: list[str] = []
        self.hits: dict[str, tuple[JobSource, int]] = {}
        self.fresh: dict[str, JobSource] = {}
        self._text = ""
        self._spans: dict[int, tuple[int, int]] = {}  # key index -> the job's text span
        self._prefix: hashlib.blake2b | None = None

    def start(self, data: bytes, root: Node | None) -> None:
        """Find the ``jobs`` mapping and each job's span; no digest is computed yet."""
        jobs = _jobs_node(root)
        if root is None or jobs is None or root.style == "flow" or jobs.style == "flow":
            return
        text = data.decode("utf-8", "surrogatepass")
        keys = jobs.items[::2]
        if not keys:
            return
        starts = [text.rfind("\n", 0, key.index) + 1 for key in keys]
        prefix = hashlib.blake2b(digest_size=20)
        defaults = next((k for k in root.items[::2] if k.value == "defaults"), None)
        for part in (self.context, str(defaults.line if defaults else 0)):
            prefix.update(part.encode("utf-8", "surrogatepass") + b"\0")
        prefix.update(text[: starts[0]].encode("utf-8", "surrogatepass") + b"\0")
        prefix.update(text[jobs.end :].encode("utf-8", "surrogatepass") + b"\0")
        self._text, self._prefix = text, prefix
        ends = [*starts[1:], jobs.end]
        for key, begin, stop in zip(keys, starts, ends, strict=True):
            if not text[begin : key.index].isspace() and begin != key.index:
                continue  # something else precedes the key on its line
            self._spans[key.index] = (begin, stop)

    def reused(self, name: str, key: Node) -> bool:
        self.order.append(name)
        span = self._spans.get(key.index)
        if span is None or self._prefix is None:
            return False
        begin, stop = span
        digest = _digest(self._prefix, self._text[begin:stop])
        known = self.known.get(name)
        if known is not None and known.digest == digest:
            self.hits[name] = (known, key.line)
            return True
        end = key.line + self._text.count("\n", key.index, stop)  # at most one line past it
        self.fresh[name] = JobSource(digest=digest, line=key.line, end=end)
        return False


def _jobs_node(root: Node | None) -> Node | None:
    if root is None or root.kind != "mapping":
        return None
    for key, value in root.pairs():
        if key.kind == "scalar" and key.value == "jobs" and value.kind == "mapping":
            return value
    return None
