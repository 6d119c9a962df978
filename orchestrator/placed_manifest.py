"""The placed jobs of a manifest, as the plan consumes them, materialised only where needed.

A plan compares each job's spec hash with the registry, and the state its engine would get
(``Backend.render``, and whether it is enabled) with the engine's live state; only a job that
differs needs its full ``Placed`` (its spec, for the diff and the apply). ``PlacedManifest``
carries the name, engine, hash, rendered state and enabled flag of every job, and the
``Placed`` objects either in memory (just loaded) or as one pickle per job (read back from the
placement cache), unpickled on first use.
Unpickling 10,000 frozen dataclass trees costs more than the rest of a no-op plan, so a plan
that finds nothing to do never pays it.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from orchestrator.plan import Placed


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
            job = self._objects[name] = pickle.loads(self._blobs.pop(name))  # noqa: S301 - see placement_cache
        return job

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
            "hashes": self.hashes,
            "rendered": self.rendered,
            "enabled": self.enabled,
            "function_names": self.function_names,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._objects = {}
        self._jobs = state["jobs"]
        self._blobs = state["blobs"]
        self.hashes = state["hashes"]
        self.rendered = state["rendered"]
        self.enabled = state["enabled"]
        self.function_names = state["function_names"]


def dumps(value: object) -> bytes:
    """``pickle.dumps`` that also takes read-only mappings (specs keep their lines in one)."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def _mappingproxy(values: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(values)


class _Pickler(pickle.Pickler):
    """Pickles a ``MappingProxyType`` as the dict it wraps, rebuilt read-only."""

    def reducer_override(self, obj: object) -> Any:
        if type(obj) is MappingProxyType:
            return _mappingproxy, (dict(obj),)
        return NotImplemented
