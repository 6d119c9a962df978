"""Run PostgreSQL's client programs (pg_dump, pg_restore) without exposing the password.

The password reaches libpq only through a password file: mode 0600, inside a private 0700
temporary directory, removed as soon as the program ends. It is never in argv (which ``ps``
shows every user) nor in the child's environment (``/proc/<pid>/environ``, and inherited by
whatever the child starts), and every message that could carry it is scrubbed. The child's
environment is built from an allow-list, so a ``DATABASE_URL`` holding the password in the
worker's own environment is not passed on either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

#: Variables of the worker's environment a client program may see; nothing else passes.
INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR")
#: Connection OPTIONS of Django's settings that libpq reads from the environment.
SSL_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a database is, and who we are there (the password stays out of ``repr``)."""

    name: str
    user: str
    host: str
    port: str
    password: str = ""
    options: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return f"Target(name={self.name!r}, user={self.user!r}, host={self.host!r})"

    @classmethod
    def from_alias(cls, alias: str = "default") -> Target:
        """The target of a Django database alias (``connections[alias].settings_dict``)."""
        return cls.from_settings(connections[alias].settings_dict)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Target:
        options = settings.get("OPTIONS") or {}
        return cls(
            name=str(settings["NAME"]),
            user=str(settings.get("USER") or ""),
            host=str(settings.get("HOST") or ""),
            port=str(settings.get("PORT") or ""),
            password=str(settings.get("PASSWORD") or ""),
            options=tuple(
                (key, str(options[key])) for key in sorted(SSL_OPTIONS) if options.get(key)
            ),
        )

    def with_database(self, name: str) -> Target:
        return Target(
            name=name,
            user=self.user,
            host=self.host,
            port=self.port,
            password=self.password,
            options=self.options,
        )

    def scrub(self, text: str) -> str:
        """``text`` with the password replaced, fit for logs, errors and the database."""
        return text.replace(self.password, "***") if self.password else text


def _pgpass_field(value: str) -> str:
    # libpq's escaping: backslash and colon are escaped with a backslash.
    return value.replace("\\", "\\\\").replace(":", "\\:")


def pgpass_line(target: Target) -> str:
    """The password-file line for ``target``. libpq matches the host field against the host it
    connects to: the socket directory itself for a Unix socket outside the default one (the
    embedded services), ``localhost`` when no host is given."""
    fields = (
        target.host or "localhost",
        target.port or "*",
        target.name,
        target.user or "*",
        target.password,
    )
    return ":".join(_pgpass_field(field) for field in fields) + "\n"


@contextmanager
def client_environment(target: Target, application: str) -> Iterator[dict[str, str]]:
    """The environment for one client program run; its password file lives only meanwhile."""
    private = tempfile.mkdtemp(prefix="orchestrator-libpq-")  # created 0700
    try:
        environment = {name: os.environ[name] for name in INHERITED if name in os.environ}
        environment.update(
            PGDATABASE=target.name,
            PGAPPNAME=application,
            PGCONNECT_TIMEOUT="10",
        )
        if target.host:
            environment["PGHOST"] = target.host
        if target.port:
            environment["PGPORT"] = target.port
        if target.user:
            environment["PGUSER"] = target.user
        for key, value in target.options:
            environment[SSL_OPTIONS[key]] = value
        if target.password:
            passfile = Path(private) / "pgpass"
            descriptor = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(pgpass_line(target))
            environment["PGPASSFILE"] = str(passfile)
        else:
            # No password configured: make sure libpq does not pick up ~/.pgpass either.
            environment["PGPASSFILE"] = os.devnull
        yield environment
    finally:
        shutil.rmtree(private, ignore_errors=True)


def pg_bin_dir(server_major: int) -> Path | None:
    """``settings.ORCHESTRATOR_PG_BIN_DIR``; unset, the server's own major version's Debian
    directory when present (pg_dump must not be older than the server), else ``None`` (PATH)."""
    configured = settings.ORCHESTRATOR_PG_BIN_DIR
    if configured:
        return Path(str(configured)).expanduser()
    debian = Path(f"/usr/lib/postgresql/{server_major}/bin")
    return debian if debian.is_dir() else None


def program(name: str, server_major: int) -> str:
    """The path of a client program matching the server's major version when installed."""
    directory = pg_bin_dir(server_major)
    if directory is not None and (directory / name).exists():
        return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} is not installed (looked in {directory or 'PATH'}); install "
            f"postgresql-client-{server_major} or set ORCHESTRATOR_PG_BIN_DIR"
        )
    return found


def run(
    argv: Sequence[str], target: Target, *, application: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a libpq client program against ``target``; never raises on a non-zero exit."""
    with client_environment(target, application) as environment:
        return subprocess.run(
            list(argv),
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
