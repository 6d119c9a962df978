"""The placed jobs of a manifest, as the plan consumes them, materialised only where needed.

A plan compares each job's spec hash with the registry, and the state its engine would get
(``Backend.render``, and whether it is enabled) with the engine's live state; only a job that
differs needs its full ``Placed`` (its spec, for the diff and the apply). ``PlacedManifest``
carries the name, engine, hash, rendered state and enabled flag of every job, and the
``Placed`` objects either in memory (just loaded) or as one pickle per job (read back from the
placement cache), unpickled on first use.
Unpickling 10,000 frozen dataclass trees costs more than the rest of a no-op plan, so a plan
that finds nothing to do never pays it.

A manifest loaded again after an edit keeps the pickles of the jobs whose text did not change
(``combine``; ``job_sources`` says how they are recognised). Such a job may have moved in the
file: its pickle keeps the lines it was written at, and ``get`` shifts them to where the job
is now. The pickle itself is kept as it was, so its lines and the shift always go together.
"""

from __future__ import annotations

import copyreg
import dataclasses
import io
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from orchestrator.plan import Placed

#: (lines to add, first line, last line): the job's own lines move, ``defaults``' do not
Shift = tuple[int, int, int]


class PlacedManifest:
    """Every placed job: ``names()`` in manifest order, ``get(name)`` on demand."""

    def __init__(
        self,
        placed: Iterable[Placed],
        *,
        hashes: Mapping[str, str],
        rendered: Mapping[str, Mapping[str, object] | None],
        function_names: Iterable[str] = (),
    ) -> None:
        self._objects: dict[str, Placed] = {job.spec.name: job for job in placed}
        self._jobs = [(name, job.engine) for name, job in self._objects.items()]
        self._blobs: dict[str, bytes] = {}
        self._shifts: dict[str, Shift] = {}
        self.hashes = dict(hashes)
        self.rendered = dict(rendered)
        self.enabled = {name: job.spec.enabled for name, job in self._objects.items()}
        self.function_names = frozenset(function_names)

    def __len__(self) -> int:
        return len(self._jobs)

    def names(self) -> list[tuple[str, str]]:
        """``(name, engine)`` of every job, in manifest order."""
        return self._jobs

    def get(self, name: str) -> Placed:
        job = self._objects.get(name)
        if job is None:
            job = pickle.loads(self._blobs[name])  # noqa: S301 - see placement_cache
            shift = self._shifts.get(name)
            if shift is not None:
                job = _shifted(job, shift)
            self._objects[name] = job
        return job

    @classmethod
    def combine(
        cls,
        order: Sequence[str],
        fresh: PlacedManifest,
        kept: PlacedManifest,
        shifts: Mapping[str, Shift],
        function_names: Iterable[str],
    ) -> PlacedManifest:
        """The jobs named in ``order``: each from ``fresh`` if it has it, else ``kept``'s
        pickle, shifted by ``shifts[name]`` (lines relative to that pickle)."""
        combined = cls((), hashes={}, rendered={}, function_names=function_names)
        engines = dict(kept._jobs)
        for name in order:
            if name in fresh._objects:
                combined._objects[name] = fresh._objects[name]
                source = fresh
                engine = fresh._objects[name].engine
            else:
                combined._blobs[name] = kept._blobs[name]
                if shifts.get(name, (0,))[0]:
                    combined._shifts[name] = shifts[name]
                source = kept
                engine = engines[name]
            combined._jobs.append((name, engine))
            combined.hashes[name] = source.hashes[name]
            combined.rendered[name] = source.rendered[name]
            combined.enabled[name] = source.enabled[name]
        return combined

    @property
    def placed(self) -> list[Placed]:
        """Every job, materialised."""
        return [self.get(name) for name, _ in self._jobs]

    # ------------------------------------------------------------------ pickling

    def __getstate__(self) -> dict[str, Any]:
        blobs = dict(self._blobs)
        # one pickler, its memo cleared between jobs: each slice is a whole pickle of its own
        buffer = io.BytesIO()
        pickler = _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        spans = []
        for name, job in self._objects.items():
            if name in blobs:  # kept as read (a shifted copy must not replace it)
                continue
            start = buffer.tell()
            pickler.dump(job)
            pickler.clear_memo()
            spans.append((name, start, buffer.tell()))
        data = buffer.getvalue()
        for name, start, end in spans:
            blobs[name] = data[start:end]
        return {
            "jobs": self._jobs,
            "blobs": blobs,
            "shifts": self._shifts,
            "hashes": self.hashes,
            "rendered": self.rendered,
            "enabled": self.enabled,
            "function_names": self.function_names,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._objects = {}
        self._jobs = state["jobs"]
        self._blobs = state["blobs"]
        self._shifts = state["shifts"]
        self.hashes = state["hashes"]
        self.rendered = state["rendered"]
        self.enabled = state["enabled"]
        self.function_names = state["function_names"]


def _shifted(job: Placed, shift: Shift) -> Placed:
    """``job`` with its own lines (``first..last``) moved by ``delta``."""
    delta, first, last = shift
    spec = job.spec
    lines = {
        field: line + delta if first <= line <= last else line
        for field, line in spec.field_lines.items()
    }
    moved = replace(spec, line=spec.line + delta, field_lines=MappingProxyType(lines))
    return replace(job, spec=moved)


def dumps(value: object) -> bytes:
    """``pickle.dumps`` that also takes read-only mappings (specs keep their lines in one)."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def _mappingproxy(values: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(values)


def _reduce_mappingproxy(obj: MappingProxyType[Any, Any]) -> tuple[Any, tuple[Any, ...]]:
    return _mappingproxy, (dict(obj),)


#: the ``__getstate__`` that ``dataclass(frozen=True, slots=True)`` adds (private to CPython's
#: ``dataclasses``; without it every object takes pickle's usual path)
_DATACLASS_GETSTATE = getattr(dataclasses, "_dataclass_getstate", None)
#: field names of each frozen slotted dataclass, in ``fields()`` order
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _dataclass(cls: type, values: tuple[Any, ...]) -> Any:
    """A frozen slotted dataclass rebuilt from its field values: what its generated
    ``__setstate__`` does, the fields set past ``frozen``."""
    obj: Any = object.__new__(cls)
    for name, value in zip(_field_names(cls), values, strict=True):
        object.__setattr__(obj, name, value)
    return obj


class _Reducers(dict[type, Any]):
    """``dispatch_table`` that learns each frozen slotted dataclass on first sight: one tuple
    of its fields (one ``attrgetter``, in C) instead of its generated ``__getstate__``, which
    calls ``dataclasses.fields`` for every object (600,000 of them in a 100,000-job entry).
    Any other type is left to pickle's usual path (a ``KeyError``)."""

    def __missing__(self, cls: type) -> Any:
        if _DATACLASS_GETSTATE is None or getattr(cls, "__getstate__", None) is not (
            _DATACLASS_GETSTATE
        ):
            raise KeyError(cls)
        names = _field_names(cls)
        read: Callable[[Any], tuple[Any, ...]]
        if len(names) > 1:
            read = attrgetter(*names)
        else:  # ``attrgetter`` of one name returns the value itself, and needs at least one
            read = lambda obj: tuple(getattr(obj, name) for name in names)  # noqa: E731

        def reduce(obj: Any) -> tuple[Any, tuple[Any, ...]]:
            return _dataclass, (cls, read(obj))

        self[cls] = reduce
        return reduce


class _Pickler(pickle.Pickler):
    """Pickles a ``MappingProxyType`` as the dict it wraps, rebuilt read-only, and frozen
    slotted dataclasses as their field values (``_Reducers``).

    Through ``dispatch_table``, which the C pickler consults only for a type it cannot pickle
    itself, not ``reducer_override``, which it calls for every object: on 100,000 jobs that
    Python call per object was most of the time spent pickling the placement cache's entry.
    """

    dispatch_table = _Reducers({**copyreg.dispatch_table, MappingProxyType: _reduce_mappingproxy})
