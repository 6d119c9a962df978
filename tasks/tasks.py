"""Import every task module, so Celery's autodiscovery (which looks for ``<app>.tasks``) registers
the application's tasks under their module names (``tasks.backup.backup_database``, ...)."""

from __future__ import annotations

from tasks import (
    backup,
    cache,
    code_ingest,
    demo,
    embeddings,
    graph,
    maintenance,
    registry_sync,
    startup,
    templates,
)

__all__ = (
    "backup",
    "cache",
    "code_ingest",
    "demo",
    "embeddings",
    "graph",
    "maintenance",
    "registry_sync",
    "startup",
    "templates",
)
