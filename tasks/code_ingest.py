"""Code ingest: chunk a source tree (by default this project's own) into ``platform.code_chunks``.

Each chunk is keyed by (repo, path, chunk index). A chunk whose text changed is rewritten (its
embedding then counts as stale, see ``tasks.embeddings``); every chunk found gets ``seen_at`` set,
so chunks of deleted files, or beyond a file's new end, stop being seen and the weekly "code
chunk cleanup" job (``platform.cleanup_obsolete_code_chunks``) removes them after its grace
period. Running ingest twice on the same tree writes nothing the second time but ``seen_at``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from celery import shared_task
from django.db import connection, transaction

from tasks import conf
from tasks.chunking import chunk_text, iter_source_files, language_of

logger = logging.getLogger(__name__)

UPSERT = """
INSERT INTO platform.code_chunks AS c
       (repo, path, chunk_index, language, symbol, start_line, end_line, content, content_hash)
SELECT %s, s.path, s.chunk_index, s.language, s.symbol, s.start_line, s.end_line, s.content,
       s.content_hash
  FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::int[], %s::int[], %s::text[],
              %s::text[])
       AS s(path, chunk_index, language, symbol, start_line, end_line, content, content_hash)
ON CONFLICT (repo, path, chunk_index) DO UPDATE
   SET language = excluded.language, symbol = excluded.symbol,
       start_line = excluded.start_line, end_line = excluded.end_line,
       content = excluded.content, content_hash = excluded.content_hash,
       ingested_at = now(), seen_at = now()
 WHERE c.content_hash IS DISTINCT FROM excluded.content_hash
    OR c.start_line IS DISTINCT FROM excluded.start_line
    OR c.symbol IS DISTINCT FROM excluded.symbol
RETURNING (xmax = 0) AS created
"""
MARK_SEEN = """
UPDATE platform.code_chunks c SET seen_at = now()
  FROM unnest(%s::text[], %s::int[]) AS s(path, chunk_index)
 WHERE c.repo = %s AND c.path = s.path AND c.chunk_index = s.chunk_index
"""

Row = tuple[str, int, str, str | None, int, int, str, str]


def collect(root: Path) -> tuple[int, list[Row]]:
    """(files read, chunk rows) for every source file under ``root``."""
    rows: list[Row] = []
    files = 0
    for path in iter_source_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as error:
            logger.warning(
                "skipped unreadable file", extra={"path": str(path), "error": str(error)}
            )
            continue
        files += 1
        relative = path.relative_to(root).as_posix()
        language = language_of(path) or "text"
        rows.extend(
            (relative, chunk.index, language, chunk.symbol, chunk.start_line, chunk.end_line,
             chunk.content.replace("\x00", ""), chunk.content_hash)
            for chunk in chunk_text(relative, text)
        )  # fmt: skip
    return files, rows


def ingest(root: Path | None = None, repo: str | None = None, batch: int = 2000) -> dict[str, int]:
    """Chunk ``root`` into the database under ``repo``; return what was created/updated."""
    root = (root or conf.code_root()).resolve()
    repo = repo or conf.code_repo()
    files, rows = collect(root)
    created = updated = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            columns = [list(column) for column in zip(*part, strict=True)]
            cursor.execute(UPSERT, [repo, *columns])
            flags = [row[0] for row in cursor.fetchall()]
            created += sum(1 for flag in flags if flag)
            updated += sum(1 for flag in flags if not flag)
            cursor.execute(MARK_SEEN, [columns[0], columns[1], repo])
    outcome = {
        "files": files,
        "chunks": len(rows),
        "created": created,
        "updated": updated,
        "unchanged": len(rows) - created - updated,
    }
    logger.info("code ingested", extra={"root": str(root), "repo": repo, "outcome": outcome})
    return outcome


@shared_task(name="tasks.code_ingest.ingest_code")
def ingest_code(
    root: str | None = None, repo: str | None = None, embed: bool = True
) -> dict[str, object]:
    """Start-up and weekly code ingest of the project's source tree; like the seed's worker it
    then embeds the new and changed chunks (``embed: false`` leaves that to its own job)."""
    outcome: dict[str, object] = dict(ingest(Path(root) if root else None, repo))
    if embed:
        from tasks.embeddings import embed_table

        outcome["embedded"] = embed_table("code_chunks")["embedded"]
    return outcome
