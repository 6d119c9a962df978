"""A cache of the placed manifest, so a plan that nothing changed does not load it again.

Loading, validating and classifying 10,000 jobs costs a second; most ``jobs plan`` runs (CI
gates, deploy scripts) see the same manifest against the same database as the last run. The
result of ``desired.place`` is a pure function of:

* the manifest's bytes and the path it is shown under (errors and specs carry it);
* what validation checks against: the Celery app's registered task names, Django's database
  aliases and which of them share pg_cron's server;
* the database's capabilities (pg_cron's version and settings, the server's time zone, the
  databases the role may reach, the functions the SQL calls): read live on every run, with
  the function names the cached manifest calls, and compared in full;
* the settings that placement reads (``ORCHESTRATOR_*`` and ``CELERY_*``, secrets left out);
* the code: the app packages' source files (path, size, modification time) and the versions
  of the libraries that parse and classify;
* time, a little: one-time triggers and expiries, and daylight-saving changes in the coming
  years. An entry is therefore trusted for an hour at most, and never past the earliest ``at``
  or ``expires`` instant of its jobs.

Any difference is a miss. A miss where only the manifest's bytes differ (the usual edit)
still keeps the jobs whose own text is unchanged (``job_sources``): only the others are
validated, classified and rendered again; any other difference, or different capabilities,
places every job again. The cache never decides what the engines hold: the plan still reads
the registry and both engines live on every run.

Where: one file per manifest path, in ``settings.ORCHESTRATOR_CACHE_DIR`` (by default the
profile's ``.data/<profile>/cache``), rather than a database table. The entry is a pickle
(a JSON form of every spec would be a second serializer to keep exact), and a pickle may only
be read from a place no one else can write: a directory of the current user, mode 0700,
holding files of the current user. A table would let anyone with write access to it run code
in every ``jobs`` command. Files written by a process that cannot create the directory are
simply not written; the plan is the same, only slower.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestrator.gc_pause import gc_paused
from orchestrator.job_sources import JobSource
from orchestrator.placed_manifest import PlacedManifest, dumps
from orchestrator.plan import Placed
from orchestrator.specs import At

logger = logging.getLogger(__name__)

#: bump when the entry's layout changes
FORMAT = 3
#: an entry is trusted this long at most (time-dependent validation: see the module docstring)
MAX_AGE_SECONDS = 3600
#: libraries whose behaviour the placement depends on
LIBRARIES = ("PyYAML", "pglast", "croniter", "celery", "django-celery-beat", "Django")
_SECRET_WORDS = ("URL", "PASSWORD", "SECRET", "TOKEN", "KEY")


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached placement: valid while ``key`` and ``capabilities`` match and not expired;
    its jobs may be kept one by one (``sources``) while ``context`` matches."""

    format: int
    key: str
    capabilities: str
    valid_until: float
    manifest: PlacedManifest
    context: str = ""
    #: each job's source, pickled on its own: only a miss that keeps jobs (an edited file)
    #: reads it, and unpickling 10,000 of them was a tenth of a warm no-op plan
    source_pickle: bytes = b""

    @property
    def sources(self) -> Mapping[str, JobSource]:
        if not self.source_pickle:
            return {}
        with gc_paused():
            sources: Mapping[str, JobSource] = pickle.loads(self.source_pickle)  # noqa: S301
        return sources


# --------------------------------------------------------------------------- keys


def source_stamp(roots: Iterable[Path]) -> str:
    """A digest of the code: every ``.py`` file's path, size and mtime, and library versions.

    ``stat`` rather than reading the files: a few milliseconds for the whole project. A file
    rewritten with the same content is a miss, never a stale hit.
    """
    digest = hashlib.sha256(sys.version.encode())
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            info = path.stat()
            digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    for library in LIBRARIES:
        try:
            digest.update(f"{library}={metadata.version(library)}\n".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library}=-\n".encode())
    return digest.hexdigest()


def settings_stamp(values: Mapping[str, object]) -> str:
    """The settings placement reads (``ORCHESTRATOR_*``, ``CELERY_*``), secrets left out."""
    chosen = {
        name: repr(value)
        for name, value in values.items()
        if name.startswith(("ORCHESTRATOR_", "CELERY_"))
        and not any(word in name for word in _SECRET_WORDS)
        and "://" not in repr(value)  # a service URL may carry a password; placement reads none
    }
    return hashlib.sha256(repr(sorted(chosen.items())).encode()).hexdigest()


def entry_key(*, data: bytes, context: str | None = None, **parts: Any) -> str:
    """Everything but the capabilities that ``desired.place`` depends on, as one digest: the
    ``context`` (``context_key(**parts)`` unless given) and the manifest's bytes."""
    digest = hashlib.sha256((context if context is not None else context_key(**parts)).encode())
    digest.update(b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def context_key(
    *,
    path: str,
    task_names: Collection[str],
    aliases: Collection[str],
    database_names: Mapping[str, str],
    connection: Mapping[str, Mapping[str, object]],
    settings: str,
    code: str,
) -> str:
    """What ``desired.place`` depends on besides the manifest's bytes and the capabilities.

    ``connection`` is each alias's database name, role, host and port (no password): pg_cron's
    rendered state names the database and the role the jobs run as."""
    digest = hashlib.sha256()
    for part in (
        str(FORMAT),
        path,
        repr(sorted(task_names)),
        repr(sorted(aliases)),
        repr(sorted(database_names.items())),
        repr(sorted((alias, sorted(values.items())) for alias, values in connection.items())),
        settings,
        code,
    ):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def capabilities_stamp(capabilities: Mapping[str, object]) -> str:
    """A digest of every engine's capabilities (every field, in a canonical order)."""
    return hashlib.sha256(repr(_canonical(capabilities)).encode()).hexdigest()


def _canonical(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        name = type(value).__qualname__
        return [name, *((f.name, _canonical(getattr(value, f.name))) for f in fields(value))]
    if isinstance(value, Mapping):
        return sorted((repr(k), _canonical(v)) for k, v in value.items())
    if isinstance(value, frozenset | set):
        return sorted(repr(item) for item in value)
    if isinstance(value, tuple | list):
        return [_canonical(item) for item in value]
    return repr(value)


def valid_until(placed: Iterable[Placed], now: float) -> float:
    """An hour from ``now``, or the earliest one-time trigger or expiry if sooner."""
    limit = now + MAX_AGE_SECONDS
    for job in placed:
        instants: list[datetime | None] = [job.spec.expires]
        if isinstance(job.spec.trigger, At):
            instants.append(job.spec.trigger.when)
        for instant in instants:
            if instant is not None:
                limit = min(limit, instant.timestamp())
    return limit


# --------------------------------------------------------------------------- storage


#: entries still being written by ``PlacementCache.put_later``, by target file
_writing: dict[Path, threading.Thread] = {}
_writing_lock = threading.Lock()


class PlacementCache:
    """Entries in ``directory``, one per manifest path."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, path: str) -> Path:
        name = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        return self.directory / f"placed-{name}.pickle"

    def _trusted(self, target: Path) -> bool:
        """Only files of ours, in a directory of ours that nobody else can write."""
        try:
            folder = self.directory.stat()
            info = target.stat()
        except OSError:
            return False
        uid = os.getuid()
        private = not (folder.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
        return folder.st_uid == uid and info.st_uid == uid and private

    def get(self, path: str, context: str) -> Entry | None:
        """The entry for ``path`` if it was stored under ``context`` (any manifest bytes),
        unexpired; else ``None``. Waits for a write of the same entry still under way."""
        target = self._file(path)
        wait_for_writes(target)
        if not self._trusted(target):
            return None
        try:
            # unpickled from the file itself: the entry is megabytes, not worth copying twice
            with target.open("rb") as file:
                header = file.readline().rstrip(b"\n")
                if header.partition(b" ")[2] != context.encode():  # not worth unpickling
                    return None
                with gc_paused():
                    entry = pickle.load(file)  # noqa: S301 - our own 0700 directory
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
            # ImportError/AttributeError: written by code that has since moved (also caught
            # by the code stamp, but a rename must never break a plan)
            logger.debug("placement cache unreadable", extra={"file": str(target), "err": error})
            return None
        if not isinstance(entry, Entry) or entry.format != FORMAT or entry.context != context:
            return None
        if time.time() >= entry.valid_until:
            return None
        return entry

    def _prune(self) -> None:
        """Remove entries no run could use any more (older than ``MAX_AGE_SECONDS``): one file
        per manifest path would otherwise pile up for paths never planned again."""
        limit = time.time() - MAX_AGE_SECONDS
        for old in self.directory.glob("placed-*.pickle"):
            try:
                if old.stat().st_mtime < limit:
                    old.unlink()
            except OSError:  # removed meanwhile by another run: nothing to do
                continue

    def put_later(self, path: str, build: Callable[[], Entry]) -> None:
        """Build and store an entry in a thread of its own, so that the caller goes on.

        Pickling a 100,000-job entry is about 1.5 s of Python, and an apply that follows
        spends longer than that waiting on the database (pg_cron's scheduling, the COPYs, the
        commit), when the main thread holds no GIL: written in the background, that time
        is mostly hidden. The thread is not a daemon, so the interpreter waits for it before
        it exits; ``get`` of the same path waits for it too.
        """
        target = self._file(path)

        def write() -> None:
            try:
                self.put(path, build())
            except Exception as error:  # noqa: BLE001 - a cache is an optimisation: never fail a command for it
                logger.warning(
                    "placement cache not written", extra={"file": str(target), "err": repr(error)}
                )

        thread = threading.Thread(target=write, name=f"placement-cache-{target.name}")
        with _writing_lock:
            previous = _writing.get(target)
            _writing[target] = thread
        if previous is not None:
            previous.join()  # the newer entry must land last
        thread.start()

    def put(self, path: str, entry: Entry) -> None:
        """Store ``entry`` atomically; a failure to write is logged and otherwise ignored."""
        target = self._file(path)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            body = dumps(entry)
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".placed-")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(f"{entry.key} {entry.context}\n".encode() + body)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self._prune()
        except OSError as error:
            logger.info(
                "placement cache not written", extra={"file": str(target), "err": str(error)}
            )


def wait_for_writes(target: Path | None = None) -> None:
    """Wait until the entries being written in the background (all, or ``target``'s) landed."""
    with _writing_lock:
        threads = [t for f, t in _writing.items() if target is None or f == target]
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join()
    with _writing_lock:
        for f, t in list(_writing.items()):
            if not t.is_alive():
                del _writing[f]


#: ``place(previous)``: the placed manifest, the capabilities it was placed with, each job's
#: source, and until when the result holds; ``previous`` is the entry whose jobs it may keep
Place = Callable[
    [Entry | None], tuple[PlacedManifest, Mapping[str, object], Mapping[str, JobSource], float]
]


def cached_placement(
    cache: PlacementCache,
    *,
    path: str,
    key: str,
    context: str,
    read_capabilities: Callable[[Collection[str]], Mapping[str, object]],
    place: Place,
) -> tuple[PlacedManifest, bool]:
    """The placed manifest at ``path``: from the cache when its entry still holds (same key,
    unexpired, and the capabilities read now equal those it was placed with), else from
    ``place``, given the entry when only the manifest's bytes differ, and stored for next
    time. Returns ``(manifest, hit)``."""
    entry = cache.get(path, context)
    if entry is not None and entry.key == key:
        capabilities = read_capabilities(entry.manifest.function_names)
        if capabilities_stamp(capabilities) == entry.capabilities:
            return entry.manifest, True
        entry = None  # placed under other capabilities: no job of it may be kept
    manifest, capabilities, sources, until = place(entry)
    cache.put_later(
        path,
        lambda: Entry(
            format=FORMAT,
            key=key,
            capabilities=capabilities_stamp(capabilities),
            valid_until=until,
            manifest=manifest,
            context=context,
            source_pickle=dumps(dict(sources)),
        ),
    )
    return manifest, False
