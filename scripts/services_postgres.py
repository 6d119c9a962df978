"""The embedded PostgreSQL 15 cluster with pg_cron: create, configure, start, bootstrap, stop.

Part of ``scripts/services.py``. pg_cron runs its jobs in background workers, so it needs no
password to connect back; applications log in as the non-superuser ``orchestrator`` role, and
SQL jobs run as ``orchestrator_jobs`` (``scripts/jobs_role.sql``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from services_layout import (
    APP_DB,
    APP_ROLE,
    JOBS_ROLE,
    PG_BIN,
    ROOT,
    Profile,
    SetupError,
    is_root,
    log,
    place_cluster,
    run,
)


def postgres_conf(profile: Profile) -> str:
    lines = [
        "# Written by scripts/services.py on every start; edit that file, not this one.",
        "listen_addresses = ''",
        f"unix_socket_directories = '{profile.socket_dir}'",
        "max_connections = 200",
        "shared_preload_libraries = 'pg_cron'",
        f"cron.database_name = '{APP_DB}'",
        "cron.use_background_workers = on",
        f"cron.host = '{profile.socket_dir}'",
        "cron.max_running_jobs = 16",
        "max_worker_processes = 40",
        "timezone = 'UTC'",
        "log_timezone = 'UTC'",
        "log_line_prefix = '%m [%p] %q%u@%d '",
    ]
    if profile.name != "dev":
        # A throw-away cluster: durability buys nothing, speed buys a shorter suite.
        lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
    return "\n".join(lines) + "\n"


PG_HBA = """\
# Written by scripts/services.py. The server's own OS user is the superuser (peer);
# everyone else logs in with a password. pg_cron uses background workers, not logins.
local   all   {superuser}   peer
local   all   all           scram-sha-256
"""


def pg_ctl(profile: Profile, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(
        [str(PG_BIN / "pg_ctl"), "-D", str(profile.pgdata), *args],
        user=profile.server_user,
        check=check,
        capture_output=True,
        text=True,
    )


def pg_running(profile: Profile) -> bool:
    if not (profile.pgdata / "PG_VERSION").exists():
        return False
    return pg_ctl(profile, "status", check=False).returncode == 0


def start_postgres(profile: Profile) -> None:
    root = place_cluster(profile)
    user = profile.server_user
    if not (profile.pgdata / "PG_VERSION").exists():
        log(f"creating a PostgreSQL 15 cluster in {profile.pgdata}")
        run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(profile.pgdata),
                "-U",
                user,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
            ],
            user=user,
            stdout=subprocess.DEVNULL,
        )
    write_as(profile, profile.pgdata / "orchestrator.conf", postgres_conf(profile))
    write_as(profile, profile.pgdata / "pg_hba.conf", PG_HBA.format(superuser=user))
    conf = profile.pgdata / "postgresql.conf"
    if "include_if_exists = 'orchestrator.conf'" not in conf.read_text():
        with conf.open("a") as handle:
            handle.write("\ninclude_if_exists = 'orchestrator.conf'\n")
    profile.socket_dir.mkdir(mode=0o755, exist_ok=True)
    if is_root():
        shutil.chown(profile.socket_dir, user, user)
    if pg_running(profile):
        pg_ctl(profile, "reload")
    else:
        log("starting PostgreSQL")
        result = pg_ctl(
            profile, "start", "-w", "-t", "60", "-l", str(root / "postgres.log"), check=False
        )
        if result.returncode != 0:
            tail = profile.pg_log.read_text(errors="replace").splitlines()[-15:]
            raise SetupError("PostgreSQL did not start:\n    " + "\n    ".join(tail))
    bootstrap_database(profile)


def write_as(profile: Profile, path: Path, text: str) -> None:
    path.write_text(text)
    if is_root():
        shutil.chown(path, profile.server_user, profile.server_user)


BOOTSTRAP_SQL = """\
\\set ON_ERROR_STOP on
\\set QUIET on
SET client_min_messages = warning;
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \\gexec
ALTER ROLE :"role" PASSWORD :'password';
-- capabilities.py reads pg_cron's settings (cron.*), which PostgreSQL shows only to this role
GRANT pg_read_all_settings TO :"role";
-- the pg_cron heartbeat looks for the "pg_cron launcher" backend in pg_stat_activity
GRANT pg_read_all_stats TO :"role";
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec
\\connect :"db"
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_cron;
GRANT USAGE ON SCHEMA cron TO :"role";
GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean)
  TO :"role";
GRANT EXECUTE ON FUNCTION cron.alter_job(bigint, text, text, text, text, boolean) TO :"role";
"""


def bootstrap_database(profile: Profile) -> None:
    """Create the application role and database, install pg_cron and set up the jobs role,
    idempotently.

    The script travels on psql's standard input, so the passwords never show in argv;
    psql's :'var' interpolation quotes them as literals.
    """
    script = (
        f"\\set role {APP_ROLE}\n\\set db {APP_DB}\n"
        f"\\set password {profile.secret('postgres')}\n"
        + BOOTSTRAP_SQL
        + f"\\set app_role {APP_ROLE}\n\\set jobs_role {JOBS_ROLE}\n"
        f"\\set jobs_password {profile.secret('postgres-jobs')}\n"
        + (ROOT / "scripts" / "jobs_role.sql").read_text()
    )
    run(
        [
            str(PG_BIN / "psql"),
            "-X",
            "-q",
            "-h",
            str(profile.socket_dir),
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
        ],
        user=profile.server_user,
        input=script,
        text=True,
        stdout=subprocess.DEVNULL,
    )


def stop_postgres(profile: Profile) -> None:
    if pg_running(profile):
        log("stopping PostgreSQL")
        pg_ctl(profile, "stop", "-m", "fast", "-w")
