"""Typed accessors of the application jobs' settings.

The values and their defaults live in ``project/settings.py``, the one place that reads the
environment. These accessors only give each value its type at the moment it is needed, so a
test's ``settings`` override (``settings.ORCHESTRATOR_BACKUP_DIR = str(tmp_path)``) takes effect
at once, whatever type the override uses.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

#: Retention of a backup kind that no setting names: how many to keep, for how many days.
BACKUP_KEEP_FALLBACK = 7
BACKUP_MAX_AGE_FALLBACK = 30


def _path(value: object) -> Path:
    return Path(str(value)).expanduser()


# --------------------------------------------------------------------------- backups


def backup_dir() -> Path:
    return _path(settings.ORCHESTRATOR_BACKUP_DIR)


def backup_keep(kind: str) -> int:
    """How many successful backups of ``kind`` to keep."""
    return int(settings.ORCHESTRATOR_BACKUP_KEEP.get(kind, BACKUP_KEEP_FALLBACK))


def backup_max_age_days(kind: str) -> int:
    """The age in days past which a successful backup of ``kind`` goes (the newest stays)."""
    return int(settings.ORCHESTRATOR_BACKUP_MAX_AGE_DAYS.get(kind, BACKUP_MAX_AGE_FALLBACK))


def backup_timeout() -> int:
    """Seconds pg_dump may run."""
    return int(settings.ORCHESTRATOR_BACKUP_TIMEOUT)


# --------------------------------------------------------------------------- embeddings


def embedder_name() -> str:
    return str(settings.ORCHESTRATOR_EMBEDDER)


def embedding_dim() -> int:
    return int(settings.ORCHESTRATOR_EMBEDDING_DIM)


def embedding_model_path() -> Path | None:
    value = settings.ORCHESTRATOR_EMBEDDING_MODEL_PATH
    return _path(value) if value else None


def embedding_batch_size() -> int:
    return int(settings.ORCHESTRATOR_EMBEDDING_BATCH_SIZE)


# --------------------------------------------------------------------------- sources


def template_dir() -> Path:
    return _path(settings.ORCHESTRATOR_TEMPLATE_DIR)


def knowledge_dir() -> Path:
    return _path(settings.ORCHESTRATOR_KNOWLEDGE_DIR)


def code_root() -> Path:
    return _path(settings.ORCHESTRATOR_CODE_ROOT)


def code_repo() -> str:
    return str(settings.ORCHESTRATOR_CODE_REPO)
