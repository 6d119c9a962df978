"""The start-up jobs: knowledge migration, templates data load, planning seed, RAG setup.

They run each time the application starts (``on: startup`` in jobs.yaml), so each one is
idempotent: running it again on the same inputs leaves the database as it was. Code ingest and
graph populate also run at start-up; their tasks live in ``tasks.code_ingest``/``tasks.graph``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from celery import shared_task
from django.db import connection, transaction

from orchestrator.errors import OrchestratorError
from tasks import code_ingest, conf, embeddings, graph, templates

logger = logging.getLogger(__name__)


class KnowledgeSourceInvalid(OrchestratorError):
    """A knowledge file is not the JSON this job expects."""


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_knowledge(directory: Path) -> list[tuple[str, str, str, str, str]]:
    """(type, name, source, content JSON, sha256) of every artifact in ``directory/*.json``.

    A file holds ``{"artifacts": [{"type": ..., "name": ..., "content": {...}}, ...]}``."""
    rows = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            artifacts = data["artifacts"]
            for item in artifacts:
                content = _canonical(item["content"])
                rows.append(
                    (str(item["type"]), str(item["name"]), path.name, content,
                     hashlib.sha256(content.encode()).hexdigest())
                )  # fmt: skip
        except (ValueError, KeyError, TypeError) as error:
            raise KnowledgeSourceInvalid(f"{path}: {error!r}") from error
    return rows


def migrate_knowledge(directory: Path | None = None) -> dict[str, int]:
    """Load the JSON knowledge artifacts into ``platform.knowledge_artifacts`` by hash."""
    directory = directory or conf.knowledge_dir()
    rows = read_knowledge(directory)
    written: list[bool] = []
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO platform.knowledge_artifacts AS a "
                "       (artifact_type, name, source, content, content_hash) "
                "SELECT t, n, s, c::jsonb, h "
                "  FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
                "       AS x(t, n, s, c, h) "
                "ON CONFLICT (artifact_type, name) DO UPDATE "
                "   SET content = excluded.content, content_hash = excluded.content_hash, "
                "       source = excluded.source, updated_at = now() "
                " WHERE a.content_hash IS DISTINCT FROM excluded.content_hash "
                "RETURNING (xmax = 0)",
                [list(column) for column in zip(*rows, strict=True)],
            )
            written = [row[0] for row in cursor.fetchall()]
    created = sum(1 for flag in written if flag)
    outcome = {
        "artifacts": len(rows),
        "created": created,
        "updated": len(written) - created,
        "unchanged": len(rows) - len(written),
    }
    logger.info("knowledge migrated", extra={"directory": str(directory), "outcome": outcome})
    return outcome


#: The initial work plan: (key, phase, title, capability, priority).
WORK_PLAN = (
    ("bootstrap-schema", "foundation", "Verify the platform schema and SQL functions", "sql", 9),
    ("first-backup", "foundation", "Take and verify the first database backup", "ops", 9),
    ("ingest-code", "knowledge", "Ingest the source tree into code chunks", "python", 8),
    ("embed-code", "knowledge", "Embed every code chunk", "python", 7),
    ("embed-templates", "knowledge", "Embed every template", "python", 6),
    ("populate-graph", "graph", "Build the code dependency graph", "python", 6),
    ("rank-graph", "graph", "Rank the dependency graph with PageRank", "sql", 5),
    ("learn-patterns", "learning", "Learn patterns from the analysis results", "sql", 5),
    ("sync-central", "learning", "Sync learnings to the central database", "sql", 4),
    ("review-docs", "quality", "Review modules that lack docstrings", "documentation", 3),
    ("review-errors", "quality", "Review broad exception handlers", "error-handling", 3),
    ("tune-retention", "operations", "Tune retention of backups and run history", "ops", 2),
)


def seed_plan() -> dict[str, int]:
    """Install the work plan; each item becomes one pending agent task, once."""
    columns = [list(column) for column in zip(*WORK_PLAN, strict=True)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO platform.work_plan_items (key, phase, title, required_capability, "
            "priority) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
            "%s::int[]) ON CONFLICT (key) DO NOTHING",
            columns,
        )
        items = cursor.rowcount
        cursor.execute(
            "SELECT id, title, required_capability, priority FROM platform.work_plan_items "
            "WHERE task_id IS NULL ORDER BY id FOR UPDATE"
        )
        tasks = 0
        for item_id, title, capability, priority in cursor.fetchall():
            cursor.execute(
                "WITH task AS (INSERT INTO platform.agent_tasks (title, required_capability, "
                "priority, source) VALUES (%s, %s, %s, 'work-plan') RETURNING id) "
                "UPDATE platform.work_plan_items SET task_id = (SELECT id FROM task) "
                "WHERE id = %s",
                [title, capability, priority, item_id],
            )
            tasks += 1
    outcome = {"items_added": items, "tasks_created": tasks}
    logger.info("work plan seeded", extra={"outcome": outcome})
    return outcome


def setup_rag() -> dict[str, object]:
    """Bring retrieval up to date: templates, code chunks, their embeddings and the graph."""
    outcome: dict[str, object] = {
        "templates": templates.sync_directory(),
        "code": code_ingest.ingest(),
    }
    outcome["template_embeddings"] = embeddings.embed_table("templates")["embedded"]
    outcome["code_embeddings"] = embeddings.embed_table("code_chunks")["embedded"]
    outcome["graph"] = graph.populate()
    logger.info("RAG set up", extra={"code_embeddings": outcome["code_embeddings"]})
    return outcome


@shared_task(name="tasks.startup.knowledge_migration")
def knowledge_migration() -> dict[str, int]:
    """Start-up: load JSON knowledge artifacts into the database."""
    return migrate_knowledge()


@shared_task(name="tasks.startup.templates_data_load")
def templates_data_load() -> dict[str, int]:
    """Start-up: sync the templates directory into the database."""
    return templates.sync_directory()


@shared_task(name="tasks.startup.planning_seed")
def planning_seed() -> dict[str, int]:
    """Start-up: install the initial work plan."""
    return seed_plan()


@shared_task(name="tasks.startup.rag_setup")
def rag_setup() -> dict[str, object]:
    """Start-up: full retrieval initialisation (each step skips what is already done)."""
    return setup_rag()
