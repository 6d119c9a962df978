"""The placement cache's keys and expiry: any input that decides a placement changes the key,
and an entry is never trusted past an hour or past its earliest one-time trigger/expiry."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.engines.pg_cron.capabilities import Capabilities
from orchestrator.job_sources import JobSource
from orchestrator.placed_manifest import PlacedManifest, dumps
from orchestrator.placement_cache import (
    FORMAT,
    MAX_AGE_SECONDS,
    Entry,
    PlacementCache,
    capabilities_stamp,
    entry_key,
    settings_stamp,
    valid_until,
)
from orchestrator.plan import Placed
from orchestrator.schedules import EngineSchedule
from tests.unit.conftest import one_job

BASE = {
    "data": b"version: 1\njobs: {}\n",
    "path": "jobs.yaml",
    "task_names": ["a.b"],
    "aliases": ["default"],
    "database_names": {"default": "app"},
    "connection": {"default": {"NAME": "app", "USER": "u", "HOST": "h", "PORT": "5432"}},
    "settings": "s",
    "code": "c",
}


def placed(fields: str) -> Placed:
    spec = one_job(fields)
    return Placed(spec=spec, engine="celery", schedule=EngineSchedule(kind="startup"))


def test_entry_key__every_input_counts() -> None:
    """Changing any one input (a byte, the path, a task, an alias, a database, the role, the
    settings, the code) gives another key."""
    base = entry_key(**BASE)
    assert entry_key(**BASE) == base
    changes = {
        "data": b"version: 1\njobs: {} \n",
        "path": "other.yaml",
        "task_names": ["a.c"],
        "aliases": ["default", "x"],
        "database_names": {"default": "other"},
        "connection": {"default": {"NAME": "app", "USER": "v", "HOST": "h", "PORT": "5432"}},
        "settings": "t",
        "code": "d",
    }
    for name, value in changes.items():
        assert entry_key(**(BASE | {name: value})) != base, name


def test_capabilities_stamp__any_field_counts() -> None:
    """Two snapshots of the engines' capabilities stamp alike only when every field is alike."""

    def engines(**kwargs: object) -> dict[str, object]:
        return {"pg_cron": Capabilities.with_pg_cron(**kwargs), "celery": None}

    one = engines(functions={"f": ("sql", True)})
    assert capabilities_stamp(one) == capabilities_stamp(engines(functions={"f": ("sql", True)}))
    other_version = engines(version=(1, 5), functions={"f": ("sql", True)})
    assert capabilities_stamp(one) != capabilities_stamp(other_version)
    untrusted = engines(functions={"f": ("plpython3u", False)})
    assert capabilities_stamp(one) != capabilities_stamp(untrusted)
    assert capabilities_stamp(one) != capabilities_stamp({"pg_cron": one["pg_cron"]})


def test_valid_until__an_hour_or_the_first_one_time_instant() -> None:
    """Without instants an entry lasts MAX_AGE_SECONDS; an 'at' trigger or an expiry before
    that ends it sooner."""
    now = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    plain = placed('schedule: "0 * * * *"\ntask: tasks.backup.backup_database')
    assert valid_until([plain], now) == now + MAX_AGE_SECONDS
    soon = placed('at: "2030-01-01T00:10:00Z"\ntask: tasks.backup.backup_database')
    assert valid_until([plain, soon], now) == now + 600
    expiring = placed(
        'schedule: "0 * * * *"\ntask: tasks.backup.backup_database\nexpires: "2030-01-01T00:05:00Z"'
    )
    assert valid_until([soon, expiring], now) == now + 300


def test_cache__round_trip_and_refusals(tmp_path: Path) -> None:
    """An entry reads back lazily (jobs unpickled on first use) with its job sources; another
    context, an expired entry, or a file in a directory others may write is not read."""
    folder = tmp_path / "cache"
    cache = PlacementCache(folder)
    job = placed('schedule: "0 * * * *"\ntask: tasks.backup.backup_database')
    manifest = PlacedManifest([job], hashes={"job": "h"}, rendered={"job": None})
    sources = {"job": JobSource(digest="d", line=3, end=5)}
    entry = Entry(format=FORMAT, key="k1", capabilities="c", valid_until=4e9, manifest=manifest,
                  context="x1", source_pickle=dumps(sources))  # fmt: skip
    cache.put("jobs.yaml", entry)
    assert oct(folder.stat().st_mode & 0o777) == oct(0o700)
    read = cache.get("jobs.yaml", "x1")
    assert read is not None
    assert read.key == "k1"
    assert read.sources == sources
    assert read.manifest.names() == [("job", "celery")]
    assert read.manifest.get("job") == job
    assert cache.get("jobs.yaml", "x2") is None
    assert cache.get("other.yaml", "x1") is None
    cache.put("jobs.yaml", replace(entry, valid_until=1.0))
    assert cache.get("jobs.yaml", "x1") is None
    cache.put("jobs.yaml", entry)
    os.chmod(folder, 0o777)  # noqa: S103 - a directory others may write is the point
    assert cache.get("jobs.yaml", "x1") is None


def test_cache__old_entries_are_pruned_on_write(tmp_path: Path) -> None:
    """Writing an entry removes entries older than MAX_AGE_SECONDS, which no run can use."""
    cache = PlacementCache(tmp_path / "cache")
    job = placed('schedule: "0 * * * *"\ntask: tasks.backup.backup_database')
    manifest = PlacedManifest([job], hashes={"job": "h"}, rendered={"job": None})
    entry = Entry(format=FORMAT, key="k", capabilities="c", valid_until=4e9, manifest=manifest,
                  context="x")  # fmt: skip
    cache.put("old.yaml", entry)
    (old,) = (tmp_path / "cache").glob("placed-*.pickle")
    stale = old.stat().st_mtime - MAX_AGE_SECONDS - 10
    os.utime(old, (stale, stale))
    cache.put("new.yaml", entry)
    assert not old.exists()
    assert cache.get("new.yaml", "x") is not None


def test_settings_stamp__placement_settings_count_secrets_do_not() -> None:
    """ORCHESTRATOR_*/CELERY_* settings change the stamp; settings holding secrets or service
    URLs (which may carry a password) and unrelated settings never take part."""
    base = {"ORCHESTRATOR_VISIBILITY_TIMEOUT": 3600, "DEBUG": False}
    stamp = settings_stamp(base)
    assert settings_stamp(base | {"ORCHESTRATOR_VISIBILITY_TIMEOUT": 60}) != stamp
    assert settings_stamp(base | {"CELERY_TASK_ACKS_LATE": True}) != stamp
    for ignored in (
        {"ORCHESTRATOR_METRICS_TOKEN": "s3cret"},
        {"CELERY_BROKER_URL": "redis://:pw@host/0"},
        {"CELERY_RESULT_BACKEND": "redis://:pw@host/1"},
        {"SECRET_KEY": "k"},
        {"DEBUG": True},
    ):
        assert settings_stamp(base | ignored) == stamp, ignored
