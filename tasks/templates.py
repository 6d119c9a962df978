"""Template sync: the files of a template directory, mirrored into ``platform.templates``.

A template's name is its path relative to the directory (``celery/retrying_task.py``); its kind
is the first directory (``celery``) and its language comes from the extension. A row changes
only when the file's sha256 does, so a second sync of the same directory writes nothing, and an
edited file loses its stale embedding (the embedding job re-embeds rows whose hash moved).
Templates whose file is gone are deleted; an empty or missing directory is an error rather than
a reason to delete every template.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from celery import shared_task
from django.db import connection, transaction

from orchestrator.errors import OrchestratorError
from tasks import conf
from tasks.chunking import language_of

logger = logging.getLogger(__name__)


class TemplateSourceMissing(OrchestratorError):
    """The template directory is missing or holds no templates."""


def read_templates(directory: Path) -> list[tuple[str, str, str, str, str]]:
    """(name, kind, language, body, sha256) of every template file under ``directory``."""
    if not directory.is_dir():
        raise TemplateSourceMissing(f"template directory {directory} does not exist")
    found = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(directory)
        body = path.read_text(encoding="utf-8")
        kind = relative.parts[0] if len(relative.parts) > 1 else "general"
        language = language_of(path) or path.suffix.lstrip(".") or "text"
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        found.append((relative.as_posix(), kind, language, body, digest))
    if not found:
        raise TemplateSourceMissing(f"template directory {directory} holds no templates")
    return found


def sync_directory(directory: Path | None = None) -> dict[str, int]:
    """Mirror ``directory`` (default: the ``ORCHESTRATOR_TEMPLATE_DIR`` setting) into the
    database; returns how many templates were created, updated, removed and left unchanged."""
    directory = directory or conf.template_dir()
    templates = read_templates(directory)
    names = [item[0] for item in templates]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO platform.templates AS t "
            "       (name, kind, language, body, content_hash, source_path) "
            "SELECT name, kind, language, body, content_hash, %s || '/' || name "
            "  FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
            "       AS s(name, kind, language, body, content_hash) "
            "ON CONFLICT (name) DO UPDATE "
            "   SET kind = excluded.kind, language = excluded.language, body = excluded.body, "
            "       content_hash = excluded.content_hash, source_path = excluded.source_path, "
            "       updated_at = now() "
            " WHERE t.content_hash IS DISTINCT FROM excluded.content_hash "
            "    OR t.source_path IS DISTINCT FROM excluded.source_path "
            "RETURNING (xmax = 0) AS created",
            [str(directory), *([list(column) for column in zip(*templates, strict=True)])],
        )
        written = [row[0] for row in cursor.fetchall()]
        cursor.execute("DELETE FROM platform.templates WHERE NOT (name = ANY(%s::text[]))", [names])
        removed = cursor.rowcount
    created = sum(1 for flag in written if flag)
    outcome = {
        "created": created,
        "updated": len(written) - created,
        "removed": removed,
        "unchanged": len(templates) - len(written),
    }
    logger.info("templates synced", extra={"directory": str(directory), "outcome": outcome})
    return outcome


@shared_task(name="tasks.templates.sync_templates")
def sync_templates(directory: str | None = None) -> dict[str, int]:
    """Daily template sync and the start-up "templates data load" (idempotent by hash)."""
    return sync_directory(Path(directory) if directory else None)
