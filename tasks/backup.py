"""Database backups with pg_dump: hourly and daily, verified, recorded, and pruned.

Each backup is a custom-format dump written next to its final name and renamed only once
``pg_restore --list`` has read it back, so a file under the final name is always a readable dump.
Every attempt is a row of ``platform.backup_metadata`` (running, then succeeded or failed, later
expired), committed at once so the record survives a failed attempt. The password reaches
pg_dump only through ``orchestrator.engines.celery.libpq`` (a 0600 password file in a private
directory).

pg_dump runs with ``--enable-row-security``: pg_cron's tables carry row-level security, and a
role that cannot bypass it (a managed service's application role) would otherwise have pg_dump
refuse the whole dump; with it, such a role dumps the rows it may see (its own cron jobs).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from celery import shared_task
from django.db import connections

from orchestrator.engines.celery import libpq
from orchestrator.engines.celery.libpq import Target
from orchestrator.errors import OrchestratorError
from tasks import conf

logger = logging.getLogger(__name__)

_KIND = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


class BackupError(OrchestratorError):
    """The backup could not be made."""


class BackupFailed(BackupError):
    """pg_dump or its verification failed; another attempt may succeed."""


def _server_major(alias: str) -> int:
    connection = connections[alias]
    connection.ensure_connection()
    return int(connection.pg_version) // 10000


def _record_start(alias: str, kind: str, target: Target, path: Path) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "INSERT INTO platform.backup_metadata (kind, database, path, status) "
            "VALUES (%s, %s, %s, 'running') RETURNING id",
            [kind, target.name, str(path)],
        )
        return int(cursor.fetchone()[0])


def _record_end(alias: str, backup_id: int, **fields: object) -> None:
    columns = ", ".join(f"{name} = %s" for name in fields)  # names are ours, values parameters
    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"UPDATE platform.backup_metadata SET {columns}, finished_at = now() "  # noqa: S608 - column names are ours
            "WHERE id = %s",
            [*fields.values(), backup_id],
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def toc_entries(listing: str) -> int:
    """The number of archive entries in a ``pg_restore --list`` output (comments excluded)."""
    return sum(1 for line in listing.splitlines() if line.strip() and not line.startswith(";"))


def _dump(target: Target, partial: Path, major: int, timeout: float) -> int:
    """Dump into ``partial`` and read it back; return its number of archive entries."""
    dump = [
        libpq.program("pg_dump", major), "--format=custom", f"--file={partial}",
        "--no-password", "--enable-row-security",
    ]  # fmt: skip
    result = libpq.run(dump, target, application="orchestrator-backup", timeout=timeout)
    if result.returncode != 0:
        raise BackupFailed(f"pg_dump exited {result.returncode}: {result.stderr.strip()}")
    listing = libpq.run(
        [libpq.program("pg_restore", major), "--list", str(partial)],
        target,
        application="orchestrator-backup",
        timeout=timeout,
    )
    entries = toc_entries(listing.stdout)
    if listing.returncode != 0 or entries == 0:
        raise BackupFailed(
            f"pg_restore --list could not read the dump back (exit {listing.returncode}, "
            f"{entries} entries): {listing.stderr.strip()}"
        )
    return entries


def make_backup(kind: str = "hourly", database: str = "default") -> dict[str, object]:
    """Dump the database of Django alias ``database``; verify, record and prune. Raises
    ``BackupFailed`` (worth retrying) or ``BackupError`` (not worth it)."""
    if not _KIND.match(kind):
        raise BackupError(f"backup kind {kind!r} must be lower-case letters, digits and '-'")
    target = Target.from_alias(database)
    major = _server_major(database)
    directory = conf.backup_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = directory / f"{target.name}-{kind}-{stamp}.dump"
    partial = final.with_name(final.name + ".partial")
    backup_id = _record_start(database, kind, target, final)
    log = {"backup_id": backup_id, "kind": kind, "database": target.name, "path": str(final)}
    logger.info("backup started", extra=log)
    try:
        entries = _dump(target, partial, major, conf.backup_timeout())
        os.replace(partial, final)
    except (BackupError, OSError, subprocess.SubprocessError) as error:
        partial.unlink(missing_ok=True)
        message = target.scrub(str(error))
        _record_end(database, backup_id, status="failed", error=message)
        logger.error("backup failed", extra={**log, "error": message})
        if isinstance(error, BackupError):
            raise type(error)(message) from None
        raise BackupFailed(message) from None
    size = final.stat().st_size
    sha256 = _sha256(final)
    _record_end(
        database,
        backup_id,
        status="succeeded",
        size_bytes=size,
        sha256=sha256,
        toc_entries=entries,
        verified=True,
    )
    expired = apply_retention(kind, target.name, database)
    logger.info(
        "backup succeeded", extra={**log, "size_bytes": size, "entries": entries, **expired}
    )
    return {
        "id": backup_id,
        "path": str(final),
        "size_bytes": size,
        "sha256": sha256,
        "toc_entries": entries,
        **expired,
    }


def apply_retention(kind: str, database_name: str, alias: str = "default") -> dict[str, int]:
    """Expire successful backups of ``kind`` beyond the count to keep or older than the maximum
    age, deleting their files; the newest one is always kept. Only files this module recorded
    are ever deleted."""
    keep = max(conf.backup_keep(kind), 1)
    oldest = datetime.now(UTC) - timedelta(days=conf.backup_max_age_days(kind))
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT id, path, started_at FROM platform.backup_metadata "
            "WHERE kind = %s AND database = %s AND status = 'succeeded' "
            "ORDER BY started_at DESC, id DESC",
            [kind, database_name],
        )
        rows = cursor.fetchall()
    expired = [
        (backup_id, path)
        for index, (backup_id, path, started_at) in enumerate(rows)
        if index > 0 and (index >= keep or started_at < oldest)
    ]
    for backup_id, path in expired:
        Path(path).unlink(missing_ok=True)
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "UPDATE platform.backup_metadata SET status = 'expired', expired_at = now() "
                "WHERE id = %s",
                [backup_id],
            )
    if expired:
        logger.info("backups expired", extra={"kind": kind, "expired": len(expired)})
    return {"expired": len(expired), "kept": len(rows) - len(expired)}


#: Archive entries that only a superuser may restore into a database without pg_cron:
#: the extension itself, and its tables' data, comments and grants.
_TOC_LINE = re.compile(r"^\d+; \d+ \d+ (?:[A-Z]+ )+(?P<schema>\S+) (?P<rest>.*)$")


def _needs_pg_cron(line: str) -> bool:
    match = _TOC_LINE.match(line)
    if match is None:
        return False
    rest = match["rest"]
    return match["schema"] == "cron" or rest.startswith(
        ("pg_cron", "EXTENSION pg_cron", "SCHEMA cron")
    )


def restore_backup(path: Path | str, database_name: str, alias: str = "default") -> int:
    """Restore a dump into the existing, empty database ``database_name`` (on the server of
    ``alias``, as its user), leaving out pg_cron, which lives only in ``cron.database_name``.
    Returns the number of entries restored; raises ``BackupError`` when pg_restore fails."""
    target = Target.from_alias(alias).with_database(database_name)
    major = _server_major(alias)
    restore = libpq.program("pg_restore", major)
    listing = libpq.run(
        [restore, "--list", str(path)], target, application="orchestrator-restore", timeout=600
    )
    if listing.returncode != 0:
        raise BackupError(target.scrub(f"cannot read {path}: {listing.stderr.strip()}"))
    kept = [line for line in listing.stdout.splitlines() if not _needs_pg_cron(line)]
    directory = conf.backup_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    selection = directory / f".restore-{os.getpid()}-{database_name}.list"
    selection.write_text("\n".join(kept) + "\n", encoding="utf-8")
    try:
        result = libpq.run(
            [restore, "--no-password", "--no-owner", "--no-acl", "--exit-on-error",
             "--single-transaction", f"--use-list={selection}", f"--dbname={database_name}",
             str(path)],
            target, application="orchestrator-restore", timeout=3600,
        )  # fmt: skip
    finally:
        selection.unlink(missing_ok=True)
    if result.returncode != 0:
        raise BackupError(target.scrub(f"pg_restore failed: {result.stderr.strip()}"))
    restored = toc_entries("\n".join(kept))
    logger.info("backup restored", extra={"path": str(path), "database": database_name})
    return restored


@shared_task(name="tasks.backup.backup_database")
def backup_database(kind: str = "hourly", database: str = "default") -> dict[str, object]:
    """Celery entry point of the hourly and daily backup jobs (see ``make_backup``)."""
    return make_backup(kind=kind, database=database)
