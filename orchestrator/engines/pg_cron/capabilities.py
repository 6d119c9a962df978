"""What the live database offers the classifier, read at run time.

Whether a job can go to pg_cron depends on the pg_cron actually installed: its version (1.4 has
no seconds and runs every schedule in GMT; 1.5 added seconds and ``cron.timezone``), its
settings, the databases the current role may connect to, and the languages of the functions the
manifest's SQL calls (an untrusted language can reach outside the database). ``Capabilities``
is that snapshot, frozen; ``read_capabilities`` takes it from a live connection with fixed,
parameterised SQL, and tests build one directly with ``with_pg_cron``/``without_pg_cron``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import psycopg
from django.db import Error as DjangoDatabaseError

from orchestrator.errors import ServiceError

logger = logging.getLogger(__name__)

SETTINGS_SQL = """
SELECT pg_catalog.current_database(),
       pg_catalog.current_setting('TimeZone'),
       pg_catalog.current_setting('cron.database_name', true),
       pg_catalog.current_setting('cron.use_background_workers', true),
       pg_catalog.current_setting('cron.max_running_jobs', true),
       pg_catalog.current_setting('cron.timezone', true)
"""
EXTENSION_SQL = "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = %s"
FUNCTION_PRIVILEGE_SQL = (
    "SELECT coalesce(pg_catalog.has_function_privilege("
    "pg_catalog.to_regprocedure(%s), 'EXECUTE'), false)"
)
DATABASES_SQL = """
SELECT datname FROM pg_catalog.pg_database
 WHERE datallowconn AND NOT datistemplate
   AND pg_catalog.has_database_privilege(datname, 'CONNECT')
 ORDER BY datname
"""
FUNCTIONS_SQL = """
SELECT n.nspname, p.proname, l.lanname, l.lanpltrusted
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
 WHERE p.proname = ANY(%s)
 ORDER BY n.nspname, p.proname
"""
#: what schedules a job that runs as the jobs role, in any database (scripts/jobs_role.sql)
SCHEDULE_IN_DATABASE = "orchestrator_cron.schedule(text,text,text,text,boolean)"


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    """One function of ``pg_proc``: where it lives and the language it is written in."""

    schema: str
    name: str
    language: str
    trusted: bool


def _frozen_mapping() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Capabilities:
    """A snapshot of what the database offers; ``online`` says whether it came from one."""

    online: bool = False
    pg_cron_installed: bool = False
    pg_cron_version: tuple[int, ...] | None = None
    cron_database_name: str | None = None
    current_database: str | None = None
    use_background_workers: bool | None = None
    max_running_jobs: int | None = None
    server_timezone: str | None = None
    cron_timezone: str | None = None
    can_schedule_in_database: bool = False
    connectable_databases: frozenset[str] = frozenset()
    #: Django database alias -> database name, for aliases on the same server as pg_cron.
    database_names: Mapping[str, str] = field(default_factory=_frozen_mapping)
    #: ``proname`` -> every function of that name (overloads, schemas) found in ``pg_proc``.
    functions: Mapping[str, tuple[FunctionInfo, ...]] = field(default_factory=_frozen_mapping)
    #: The names the catalog was asked about; ``catalog_complete`` means "all of them".
    looked_up: frozenset[str] = frozenset()
    catalog_complete: bool = False

    # ------------------------------------------------------------------ derived facts

    @property
    def supports_seconds(self) -> bool:
        """'[1-59] seconds' schedules arrived in pg_cron 1.5."""
        return self._at_least(1, 5)

    @property
    def supports_timezone(self) -> bool:
        """``cron.timezone`` arrived in pg_cron 1.5; 1.4 runs every schedule in GMT."""
        return self._at_least(1, 5)

    @property
    def supports_last_day(self) -> bool:
        """``$`` (last day of the month) arrived in pg_cron 1.6."""
        return self._at_least(1, 6)

    @property
    def pg_cron_label(self) -> str:
        """'pg_cron 1.4' (major.minor), for sentences; plain 'pg_cron' when unknown."""
        if not self.pg_cron_version:
            return "pg_cron"
        return "pg_cron " + ".".join(str(part) for part in self.pg_cron_version[:2])

    def _at_least(self, major: int, minor: int) -> bool:
        return self.pg_cron_version is not None and self.pg_cron_version[:2] >= (major, minor)

    def functions_named(self, schema: str | None, name: str) -> tuple[FunctionInfo, ...] | None:
        """The catalog's functions called ``name`` (in ``schema`` when qualified).

        ``None`` when the catalog was not asked about that name (offline, or not collected);
        an empty tuple when it was asked and has no such function.
        """
        if not (self.catalog_complete or name in self.looked_up):
            return None
        found = self.functions.get(name, ())
        if schema is not None:
            found = tuple(info for info in found if info.schema == schema)
        return found

    # ------------------------------------------------------------------ constructors

    @classmethod
    def without_pg_cron(cls, **overrides: Any) -> Capabilities:
        """A database without pg_cron: every job goes to Celery."""
        values: dict[str, Any] = {"online": True, "current_database": "app"}
        values.update(overrides)
        return cls(**values)

    @classmethod
    def offline(cls) -> Capabilities:
        """Nothing known: the database could not be reached."""
        return cls()

    @classmethod
    def with_pg_cron(
        cls,
        *,
        version: tuple[int, ...] = (1, 4, 2),
        database: str = "app",
        functions: Mapping[str, tuple[str, bool]] | None = None,
        **overrides: Any,
    ) -> Capabilities:
        """pg_cron installed in ``database`` (its ``cron.database_name``), as tests need it.

        ``functions`` maps ``name`` or ``schema.name`` to ``(language, trusted)`` and is the
        whole catalog: a name missing from it is a function that does not exist.
        """
        by_name: dict[str, list[FunctionInfo]] = {}
        for qualified, (language, trusted) in (functions or {}).items():
            schema, _, name = qualified.rpartition(".")
            info = FunctionInfo(schema or "pg_catalog", name, language, trusted)
            by_name.setdefault(name, []).append(info)
        values: dict[str, Any] = {
            "online": True,
            "pg_cron_installed": True,
            "pg_cron_version": version,
            "cron_database_name": database,
            "current_database": database,
            "use_background_workers": False,
            "max_running_jobs": 32,
            "server_timezone": "UTC",
            "connectable_databases": frozenset({database, "postgres"}),
            "database_names": MappingProxyType({"default": database}),
            "functions": MappingProxyType({k: tuple(v) for k, v in by_name.items()}),
            "catalog_complete": True,
        }
        values.update(overrides)
        return cls(**values)


# --------------------------------------------------------------------------- reading


def read_capabilities(
    connection: Any,
    *,
    function_names: Iterable[str] = (),
    database_names: Mapping[str, str] | None = None,
) -> Capabilities:
    """Read the capabilities of the database behind ``connection`` (Django or psycopg).

    ``function_names`` are the functions the manifest's SQL calls (unqualified names);
    ``database_names`` maps the Django aliases on this server to their database names
    (default: ``{"default": current_database()}``). Raises ``ServiceError`` when the database
    cannot be read.
    """
    names = sorted({name.lower() for name in function_names})
    try:
        with connection.cursor() as cursor:
            cursor.execute(SETTINGS_SQL)
            database, server_tz, cron_db, workers, max_jobs, cron_tz = cursor.fetchone()
            cursor.execute(EXTENSION_SQL, ["pg_cron"])
            row = cursor.fetchone()
            version = _version(row[0]) if row else None
            can_schedule_elsewhere = False
            if row:
                cursor.execute(FUNCTION_PRIVILEGE_SQL, [SCHEDULE_IN_DATABASE])
                can_schedule_elsewhere = bool(cursor.fetchone()[0])
            cursor.execute(DATABASES_SQL)
            databases = frozenset(name for (name,) in cursor.fetchall())
            by_name: dict[str, list[FunctionInfo]] = {}
            if names:
                cursor.execute(FUNCTIONS_SQL, [names])
                for schema, name, language, trusted in cursor.fetchall():
                    by_name.setdefault(name, []).append(
                        FunctionInfo(schema, name, language, bool(trusted))
                    )
    except (DjangoDatabaseError, psycopg.Error) as error:
        detail = " ".join(str(error).split())  # drivers' messages span lines
        raise ServiceError(f"cannot read the database's capabilities: {detail}") from error
    capabilities = Capabilities(
        online=True,
        pg_cron_installed=row is not None,
        pg_cron_version=version,
        cron_database_name=cron_db,
        current_database=database,
        use_background_workers=_flag(workers),
        max_running_jobs=int(max_jobs) if max_jobs and max_jobs.isdigit() else None,
        server_timezone=server_tz,
        cron_timezone=cron_tz,
        can_schedule_in_database=can_schedule_elsewhere,
        connectable_databases=databases,
        database_names=MappingProxyType(dict(database_names or {"default": database})),
        functions=MappingProxyType({name: tuple(infos) for name, infos in by_name.items()}),
        looked_up=frozenset(names),
    )
    logger.debug("capabilities of %s: %s", database, capabilities)
    return capabilities


def _version(text: str) -> tuple[int, ...]:
    """'1.4-1' -> (1, 4): the part after '-' is the SQL script revision, not a release."""
    release = text.split("-", 1)[0]
    return tuple(int(part) for part in re.findall(r"[0-9]+", release))


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.lower() in {"on", "true", "yes", "1"}
