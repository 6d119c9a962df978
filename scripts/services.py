#!/usr/bin/env python3
"""Start, stop and describe the embedded local services: PostgreSQL 15 with pg_cron, and Redis.

This runs before the virtualenv exists, so it uses the standard library only. Each *profile*
(``dev`` for ``make run``, ``test`` for ``make test``) gets its own private cluster and Redis under
``.data/<profile>/``, so a test run never touches the data of a running orchestrator.

Why a private cluster rather than the distribution's: pg_cron must be preloaded and told which
database holds its metadata (``cron.database_name``), and we want that database to be ours. The
server runs as the ``postgres`` system user when we are root (PostgreSQL refuses root); when that
user cannot reach ``.data/`` (a clone under a 0700 home), the cluster lives in a private folder
under ``/var/lib/orchestrator`` instead and ``.data/<profile>/postgres`` points to it.

pg_cron runs its jobs in background workers (``cron.use_background_workers``), so it needs no
password to connect back; applications log in as the non-superuser role ``orchestrator`` with a
generated password (SCRAM), and SQL jobs run as ``orchestrator_jobs`` (``scripts/jobs_role.sql``:
no CREATEDB/CREATEROLE, only the privileges granted to it). Secrets are written to 0600 files,
never passed in argv.

With ``DATABASE_URL`` (or ``REDIS_URL``) set in the environment, that service is external and
nothing embedded starts for it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

# The sibling modules are plain files beside this script, which runs before any virtualenv.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from services_layout import Profile, SetupError, ensure_packages, log, make_home
from services_postgres import pg_running, start_postgres, stop_postgres
from services_redis import redis_pid, start_redis, stop_redis


def write_env(profile: Profile, values: dict[str, str]) -> None:
    fd = os.open(profile.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        for key, value in values.items():
            handle.write(f"{key}={value}\n")


def start(profile: Profile, quiet: bool) -> None:
    external_db = bool(os.environ.get("DATABASE_URL"))
    external_redis = bool(os.environ.get("REDIS_URL"))
    values: dict[str, str] = {"SECRET_KEY": "", "DATABASE_URL": "", "REDIS_URL": ""}
    if not (external_db and external_redis):
        ensure_packages()
        make_home(profile)
    if external_db:
        log("DATABASE_URL is set: using that PostgreSQL, starting none")
        values.pop("DATABASE_URL")
    else:
        start_postgres(profile)
        values["DATABASE_URL"] = profile.database_url()
        values["JOBS_DATABASE_URL"] = profile.jobs_database_url()
    if external_redis:
        log("REDIS_URL is set: using that Redis, starting none")
        values.pop("REDIS_URL")
    else:
        start_redis(profile)
        values["REDIS_URL"] = profile.redis_url()
    if external_db and external_redis:
        return
    values["SECRET_KEY"] = profile.secret("django")
    write_env(profile, values)
    if not quiet:
        for key in ("DATABASE_URL", "REDIS_URL"):
            if key in values:
                print(f"{key}={values[key]}")


def stop(profile: Profile) -> None:
    if not profile.home.exists():
        return
    stop_redis(profile)
    stop_postgres(profile)


def status(profile: Profile) -> int:
    pg = pg_running(profile) if profile.home.exists() else False
    redis = bool(redis_pid(profile)) if profile.home.exists() else False
    print(f"postgresql: {'running' if pg else 'stopped'}")
    print(f"redis: {'running' if redis else 'stopped'}")
    return 0 if pg and redis else 3


def profile_name(value: str) -> str:
    if not value.isalnum() or not value.islower():
        raise argparse.ArgumentTypeError("a profile is lower-case letters and digits")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status", "env"])
    parser.add_argument(
        "--profile",
        default="dev",
        type=profile_name,
        help="dev (make run), test (make test), or any other name for a separate set",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the URLs")
    options = parser.parse_args(argv)
    profile = Profile(options.profile)
    try:
        if options.action == "start":
            start(profile, options.quiet)
        elif options.action == "stop":
            stop(profile)
        elif options.action == "status":
            return status(profile)
        else:
            sys.stdout.write(profile.env_file.read_text())
    except SetupError as error:
        print(f"services: error: {error}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or "").strip() if isinstance(error.stderr, str) else ""
        print(
            f"services: error: {error.cmd[-1] if error.cmd else 'command'} failed "
            f"(exit {error.returncode}){': ' + detail if detail else ''}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
