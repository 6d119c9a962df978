"""Embedding jobs: (re-)embed code chunks and templates with the configured embedder.

A row needs embedding when it has no vector, when its vector came from another model (name and
dimension are stored with it: switching embedders re-embeds instead of mixing spaces), or when
its text changed since (``embedded_hash`` differs from ``content_hash``). Rows are claimed in
batches with ``FOR UPDATE SKIP LOCKED`` inside a transaction, so two runs that meet split the
work; vectors are written back through COPY into a temporary table and one UPDATE per batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from celery import shared_task
from django.db import connection, transaction

from tasks import conf
from tasks.embedders import Embedder, get_embedder

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Table:
    """Where a kind of embeddable text lives (fixed names, never user input)."""

    name: str
    text_column: str


TABLES = {
    "code_chunks": Table("platform.code_chunks", "content"),
    "templates": Table("platform.templates", "body"),
}


def _claim(table: Table, model: str, dim: int, limit: int) -> list[tuple[int, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {table.text_column}, content_hash FROM {table.name} "  # noqa: S608 - fixed TABLES
            "WHERE embedding IS NULL OR embedding_model IS DISTINCT FROM %s "
            "   OR embedding_dim IS DISTINCT FROM %s "
            "   OR embedded_hash IS DISTINCT FROM content_hash "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            [model, dim, limit],
        )
        return list(cursor.fetchall())


def _write(table: Table, model: str, dim: int, rows: list[tuple[int, str, list[float]]]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS embedding_batch "
            "(id bigint, content_hash text, embedding real[]) ON COMMIT DROP"
        )
        with cursor.cursor.copy(
            "COPY embedding_batch (id, content_hash, embedding) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"UPDATE {table.name} t SET embedding = b.embedding, "  # noqa: S608 - fixed TABLES
            "embedding_model = %s, embedding_dim = %s, embedded_hash = b.content_hash, "
            "embedded_at = now() FROM embedding_batch b WHERE t.id = b.id",
            [model, dim],
        )
        cursor.execute("TRUNCATE embedding_batch")


def embed_table(
    kind: str, embedder: Embedder | None = None, batch_size: int | None = None,
    limit: int | None = None,
) -> dict[str, object]:  # fmt: skip
    """Embed every row of ``kind`` (``code_chunks`` or ``templates``) that needs it."""
    table = TABLES[kind]
    embedder = embedder or get_embedder()
    batch_size = batch_size or conf.embedding_batch_size()
    embedded = 0
    started = time.perf_counter()
    while limit is None or embedded < limit:
        size = batch_size if limit is None else min(batch_size, limit - embedded)
        with transaction.atomic():
            rows = _claim(table, embedder.model, embedder.dim, size)
            if not rows:
                break
            vectors = embedder.embed([text for _, text, _ in rows])
            _write(
                table,
                embedder.model,
                embedder.dim,
                [
                    (row_id, digest, vector)
                    for (row_id, _, digest), vector in zip(rows, vectors, strict=True)
                ],
            )
        embedded += len(rows)
    elapsed = time.perf_counter() - started
    outcome: dict[str, object] = {
        "table": kind,
        "model": embedder.model,
        "dim": embedder.dim,
        "embedded": embedded,
        "seconds": round(elapsed, 3),
    }
    logger.info("embedded", extra={"outcome": outcome})
    return outcome


@shared_task(name="tasks.embeddings.embed_code_chunks")
def embed_code_chunks(limit: int | None = None) -> dict[str, object]:
    """Embed the code chunks that need it (after code ingest)."""
    return embed_table("code_chunks", limit=limit)


@shared_task(name="tasks.embeddings.embed_templates")
def embed_templates(limit: int | None = None) -> dict[str, object]:
    """The weekly "template embed" job: regenerate template embeddings that are missing/stale."""
    return embed_table("templates", limit=limit)
