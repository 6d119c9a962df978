"""Read configuration from the environment, falling back to the embedded local services.

Only ``project/settings.py`` calls this module: it is the one place that turns the environment
into settings, and everything else reads ``django.conf.settings`` (so a test's ``settings``
override reaches every reader, and the README's configuration table can be checked against one
file). ``scripts/`` run before Django and the virtualenv exist and read their own few variables.

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


def get_with(name: str, partner: str, default: str = "") -> str:
    """Like ``get``, but the embedded services' value only when ``partner`` is embedded too:
    the jobs role's URL of the embedded cluster must never pair with an external database."""
    value = os.environ.get(name)
    if value:
        return value
    if os.environ.get(partner):
        return default
    return _EMBEDDED.get(name, default)


def flag(name: str, default: bool = False) -> bool:
    value = get(name)
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def listing(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in get(name, default).split(",") if item.strip()]


def integer(name: str, default: int) -> int:
    """An integer setting; a value that is not one stops start-up with the variable's name."""
    value = get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {value!r}") from None


def integers_by_suffix(prefix: str) -> dict[str, int]:
    """``PREFIX<SUFFIX>=N`` variables as ``{suffix.lower(): N}``, for settings with one value
    per name chosen in the manifest (a backup kind, say), so a new name needs no new code."""
    names = {*_EMBEDDED, *os.environ}
    return {
        name[len(prefix) :].lower(): integer(name, 0)
        for name in sorted(names)
        if name.startswith(prefix) and len(name) > len(prefix) and get(name)
    }


def strings_by_prefix(prefix: str) -> dict[str, str]:
    """``PREFIX<SUFFIX>=value`` variables as ``{full name: value}``: the secrets a manifest may
    name (``notify.webhook.secret_env``), and no other variable of the environment."""
    names = {*_EMBEDDED, *os.environ}
    return {
        name: get(name)
        for name in sorted(names)
        if name.startswith(prefix) and len(name) > len(prefix) and get(name)
    }
