"""Backups for real: pg_dump of the test database, restored into a scratch database.

The round trip compares every platform table row by row (count and checksum) between the live
database and the restore. The secrecy tests watch the real pg_dump process while it runs: its
argv and environment (``/proc/<pid>/cmdline``, ``/proc/<pid>/environ``) and every log record must
be free of the password, which the database really demands (scram-sha-256 on its socket).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from tasks import backup
from tests.integration.platform_db import PLATFORM_TABLES, clean_platform, connect

__all__ = ("clean_platform",)

SEED = """
INSERT INTO platform.agents (name, role, capabilities, max_concurrent)
SELECT 'agent-' || g, 'worker', ARRAY['sql', 'python'], 3 FROM generate_series(1, 20) g;
INSERT INTO platform.agent_tasks (title, required_capability, priority, result)
SELECT 'task ' || g, (ARRAY['sql', 'python', NULL])[1 + g % 3], g % 9,
       jsonb_build_object('n', g, 'note', 'résumé ✓')
  FROM generate_series(1, 500) g;
INSERT INTO platform.code_chunks (repo, path, chunk_index, language, start_line, end_line,
                                  content, content_hash, embedding, embedding_model, embedding_dim,
                                  embedded_hash)
SELECT 'r', 'src/m' || (g / 10) || '.py', g % 10, 'python', 1, 3,
       repeat('def f_' || g || '(): return ' || g || E'\\n', 3), md5(g::text),
       ARRAY[g::real / 3, -g::real, 0.125]::real[], 'test-model', 3, md5(g::text)
  FROM generate_series(1, %(chunks)s) g;
INSERT INTO platform.graph_nodes (origin, kind, name, pagerank)
SELECT 'test', 'module', 'm' || g, 1.0 / g FROM generate_series(1, 50) g;
"""


def seed(chunks: int = 300) -> None:
    with connect(autocommit=True) as conn:
        conn.execute(SEED.replace("%(chunks)s", str(int(chunks))))
        conn.execute("SELECT platform.assign_pending_tasks()")


def table_fingerprints(conn: psycopg.Connection) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of every platform table."""
    prints = {}
    for table in PLATFORM_TABLES:
        schema, name = table.split(".")
        query = sql.SQL(
            "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
            "FROM {} t"
        ).format(sql.Identifier(schema, name))
        prints[table] = conn.execute(query).fetchone()
    return prints


@pytest.fixture
def backup_dir(settings: pytest.FixtureRequest, tmp_path: Path) -> Path:
    directory = tmp_path / "backups"
    settings.ORCHESTRATOR_BACKUP_DIR = str(directory)
    return directory


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """A new, empty database made with CREATE DATABASE (the app role has CREATEDB)."""
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    with connect(autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def connect_to(name: str) -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=name,
        user=settings["USER"],
        password=settings["PASSWORD"],
        host=settings["HOST"],
        port=settings["PORT"] or None,
        autocommit=True,
    )


def test_backup__round_trip_restores_equal_tables(
    clean_platform: None, backup_dir: Path, scratch_database: str
) -> None:
    """A backup restored into a fresh database has every platform table with the same row count
    and checksum as the live one (real[] vectors, jsonb and non-ASCII text included); the dump
    is recorded as verified with its size and sha256, and its directory is private."""
    seed()
    result = backup.make_backup("manual")

    path = Path(str(result["path"]))
    assert path.parent == backup_dir
    assert path.exists()
    assert not list(backup_dir.glob("*.partial"))
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700
    with connect() as conn:
        row = conn.execute(
            "SELECT status, verified, size_bytes, sha256, toc_entries FROM "
            "platform.backup_metadata WHERE id = %s",
            [result["id"]],
        ).fetchone()
        live = table_fingerprints(conn)
    assert row == ("succeeded", True, path.stat().st_size, result["sha256"], result["toc_entries"])

    restored_entries = backup.restore_backup(path, scratch_database)
    assert 0 < restored_entries < int(result["toc_entries"])  # pg_cron's entries left out
    with connect_to(scratch_database) as conn:
        restored = table_fingerprints(conn)
    # The backup's own 'running' record was committed before the dump began.
    assert restored.pop("platform.backup_metadata")[0] == 1
    live.pop("platform.backup_metadata")
    assert restored == live
    assert live["platform.code_chunks"][0] == 300
    assert live["platform.task_assignments"][0] == 60


def children_named(name: str) -> list[int]:
    """Pids of this process's direct children running ``name``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and command == name:
            pids.append(int(entry.name))
    return pids


def test_backup__password_never_in_argv_environment_or_logs(
    clean_platform: None, backup_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While pg_dump runs, neither its argv nor its environment holds the password (it gets a
    0600 PGPASSFILE in a 0700 directory instead), no log record does, and the file is gone
    afterwards; the dump still succeeds, so the password did reach libpq."""
    password = connection.settings_dict["PASSWORD"]
    assert password
    seed(chunks=60_000)  # big enough that pg_dump runs long enough to be watched
    caplog.set_level(logging.DEBUG)
    outcome: dict[str, object] = {}

    def run() -> None:
        outcome["result"] = backup.make_backup("manual")

    worker = threading.Thread(target=run)
    worker.start()
    seen: dict[int, tuple[bytes, bytes, str]] = {}
    while worker.is_alive():
        for pid in children_named("pg_dump"):
            if pid in seen:
                continue
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            variables = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
            passfile = variables.get(b"PGPASSFILE", b"").decode()
            mode = ""
            try:
                mode = oct(stat.S_IMODE(os.stat(passfile).st_mode)) + oct(
                    stat.S_IMODE(os.stat(os.path.dirname(passfile)).st_mode)
                )
            except OSError:
                mode = "gone"
            seen[pid] = (argv, environ, mode)
        time.sleep(0.001)
    worker.join()

    assert "result" in outcome
    assert seen, "pg_dump finished before it could be observed"
    for argv, environ, mode in seen.values():
        assert b"pg_dump" in argv
        assert password.encode() not in argv
        assert password.encode() not in environ
        assert b"DATABASE_URL" not in environ
        assert b"PGPASSFILE=" in environ
        assert mode in {"0o6000o700", "gone"}
    assert password not in caplog.text
    assert "backup succeeded" in caplog.text
    passfiles = [
        item.split(b"=", 1)[1].decode()
        for _, environ, _ in seen.values()
        for item in environ.split(b"\0")
        if item.startswith(b"PGPASSFILE=")
    ]
    assert all(not Path(item).exists() for item in passfiles)


def test_backup__wrong_password_fails_cleanly_and_is_recorded(
    clean_platform: None, backup_dir: Path, settings: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """With a wrong password pg_dump is refused: the attempt raises BackupFailed (the retried
    kind), leaves no file, is recorded as failed, and the wrong password appears nowhere."""
    from django.db import connections

    wrong = f"wrong-{uuid.uuid4().hex}"
    # Django's own connection stays open with the right password; only pg_dump gets the wrong one.
    connections["default"].ensure_connection()
    original = connections["default"].settings_dict["PASSWORD"]
    connections["default"].settings_dict["PASSWORD"] = wrong
    try:
        with pytest.raises(backup.BackupFailed, match="password authentication failed") as info:
            backup.make_backup("manual")
    finally:
        connections["default"].settings_dict["PASSWORD"] = original
    assert wrong not in str(info.value)
    assert wrong not in caplog.text
    assert not any(backup_dir.iterdir())
    with connect() as conn:
        status, error = conn.execute(
            "SELECT status, error FROM platform.backup_metadata"
        ).fetchone()
    assert status == "failed"
    assert "password authentication failed" in error
    assert wrong not in error


def test_backup__retention_keeps_the_newest_by_count(
    clean_platform: None, backup_dir: Path, settings: pytest.FixtureRequest
) -> None:
    """With two to keep, a third backup of a kind expires the oldest: its file is deleted and
    its record says expired; backups of another kind are not touched."""
    settings.ORCHESTRATOR_BACKUP_KEEP = {**settings.ORCHESTRATOR_BACKUP_KEEP, "testkind": 2}
    other = backup.make_backup("otherkind")
    made = [backup.make_backup("testkind") for _ in range(3)]
    assert made[-1]["expired"] == 1
    assert not Path(str(made[0]["path"])).exists()
    assert all(Path(str(item["path"])).exists() for item in made[1:])
    assert Path(str(other["path"])).exists()
    with connect() as conn:
        statuses = dict(conn.execute("SELECT id, status FROM platform.backup_metadata").fetchall())
    assert statuses == {
        other["id"]: "succeeded",
        made[0]["id"]: "expired",
        made[1]["id"]: "succeeded",
        made[2]["id"]: "succeeded",
    }


def test_backup__bad_kind_is_refused_before_any_work(backup_dir: Path) -> None:
    """A kind that could escape the file name is refused with a BackupError (not retried)."""
    with pytest.raises(backup.BackupError, match="must be lower-case") as info:
        backup.make_backup("../etc")
    assert not isinstance(info.value, backup.BackupFailed)
    assert not backup_dir.exists()
