"""Read configuration from the environment, falling back to the embedded local services.

``scripts/services.py`` writes ``.data/<profile>/services.env`` (0600) with the URLs and secret
key of the services it started. When ``DATABASE_URL``/``REDIS_URL``/``SECRET_KEY`` are not in the
environment, the values of that file are used, so ``python manage.py ...`` just works after
``make services``. The profile is ``ORCHESTRATOR_PROFILE`` (``dev`` unless told otherwise); the
test settings choose ``test``.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def profile() -> str:
    return os.environ.get("ORCHESTRATOR_PROFILE", "dev")


def services_env_file(name: str | None = None) -> Path:
    return BASE_DIR / ".data" / (name or profile()) / "services.env"


def _embedded() -> dict[str, str]:
    path = services_env_file()
    try:
        text = path.read_text()
    except (FileNotFoundError, PermissionError):
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and value:
            values[key.strip()] = value.strip()
    return values


_EMBEDDED = _embedded()


def get(name: str, default: str = "") -> str:
    """The environment's value, else the embedded services' value, else ``default``."""
    value = os.environ.get(name)
    if value:
        return value
    return _EMBEDDED.get(name, default)


def flag(name: str, default: bool = False) -> bool:
    value = get(name)
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def listing(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in get(name, default).split(",") if item.strip()]
