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
generated password (SCRAM). Secrets are written to 0600 files, never passed in argv.

With ``DATABASE_URL`` (or ``REDIS_URL``) set in the environment, that service is external and
nothing embedded starts for it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_CRON_LIB = Path("/usr/lib/postgresql/15/lib/pg_cron.so")
REDIS_SERVER = "redis-server"
APP_ROLE = "orchestrator"
APP_DB = "orchestrator"
REDIS_PORTS = {"dev": 6390, "test": 6391}  # other profiles: a port derived from the name
PACKAGES = {
    "postgresql-15": PG_BIN / "postgres",
    "postgresql-15-cron": PG_CRON_LIB,
    "redis-server": Path("/usr/bin/redis-server"),
}
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for ".s.PGSQL.5432"


class SetupError(Exception):
    """A set-up problem the user must fix; its message says how."""


def log(message: str) -> None:
    print(f"services: {message}", flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


def run(
    argv: list[str], *, user: str | None = None, check: bool = True, **kwargs
) -> subprocess.CompletedProcess:
    """Run a program, as ``user`` when we are root and it differs from us."""
    if user and is_root() and user != "root":
        argv = ["runuser", "-u", user, "--", *argv]
        kwargs.setdefault("cwd", "/")  # our cwd may be under a home the user cannot enter
    return subprocess.run(argv, check=check, **kwargs)


# --------------------------------------------------------------------------- packages


def ensure_packages() -> None:
    """Install missing Debian packages when root; otherwise say exactly what to run."""
    missing = [name for name, probe in PACKAGES.items() if not probe.exists()]
    if not missing:
        return
    command = "apt-get install -y " + " ".join(missing)
    if not is_root():
        raise SetupError(
            f"missing Debian packages: {', '.join(missing)}.\n"
            f"Install them with:\n    sudo apt-get update && sudo {command}"
        )
    log(f"installing {', '.join(missing)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", *missing], env=env, stdout=subprocess.DEVNULL)


# --------------------------------------------------------------------------- layout


class Profile:
    """Where one profile keeps its services, and the secrets it generated once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.home = ROOT / ".data" / name
        self.server_user = "postgres" if is_root() else pwd.getpwuid(os.geteuid()).pw_name
        default_port = (
            REDIS_PORTS.get(name) or 6400 + int(hashlib.sha256(name.encode()).hexdigest(), 16) % 500
        )
        self.redis_port = int(os.environ.get("ORCHESTRATOR_REDIS_PORT", default_port))

    # PostgreSQL --------------------------------------------------------------
    @property
    def pg_link(self) -> Path:
        return self.home / "postgres"

    def pg_root(self) -> Path:
        """The folder holding the cluster: under .data/ when the server user can reach it."""
        if self.pg_link.exists():
            return self.pg_link.resolve()
        return self.pg_link

    @property
    def pgdata(self) -> Path:
        return self.pg_root() / "data"

    @property
    def socket_dir(self) -> Path:
        candidate = self.pg_root() / "run"
        if len(str(candidate)) <= SOCKET_PATH_MAX - 14:
            return candidate
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        # sun_path is short: a deep clone needs its socket folder at a short path.
        return Path("/tmp") / f"orchestrator-{digest}-{self.name}"  # noqa: S108

    @property
    def pg_log(self) -> Path:
        return self.pg_root() / "postgres.log"

    # Redis -------------------------------------------------------------------
    @property
    def redis_dir(self) -> Path:
        return self.home / "redis"

    @property
    def redis_pidfile(self) -> Path:
        return self.redis_dir / "redis.pid"

    # secrets and the env file --------------------------------------------------
    @property
    def env_file(self) -> Path:
        return self.home / "services.env"

    def secret(self, name: str) -> str:
        """A random secret, generated on first use and kept in a 0600 file."""
        path = self.home / "secrets" / name
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(24))
        return path.read_text().strip()

    def database_url(self) -> str:
        host = urllib.parse.quote(str(self.socket_dir), safe="")
        return f"postgresql://{APP_ROLE}:{self.secret('postgres')}@{host}/{APP_DB}"

    def redis_url(self) -> str:
        return f"redis://:{self.secret('redis')}@127.0.0.1:{self.redis_port}/0"


def make_home(profile: Profile) -> None:
    # 0711: the postgres user may traverse to its cluster, but lists and reads nothing else.
    for folder in (ROOT / ".data", profile.home):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o711)


def server_can_reach(profile: Profile) -> bool:
    if not is_root():
        return True
    probe = subprocess.run(
        ["runuser", "-u", profile.server_user, "--", "test", "-x", str(profile.home)],
        check=False,
    )
    return probe.returncode == 0


def place_cluster(profile: Profile) -> Path:
    """Choose (once) where the cluster lives and make that folder the server user's."""
    if profile.pg_link.is_symlink() or profile.pg_link.is_dir():
        return profile.pg_root()
    if server_can_reach(profile):
        target = profile.pg_link
        target.mkdir(mode=0o700)
    else:
        digest = hashlib.sha256(str(profile.home).encode()).hexdigest()[:12]
        target = Path("/var/lib/orchestrator") / f"{digest}-{profile.name}"
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.mkdir(mode=0o700, exist_ok=True)
        profile.pg_link.symlink_to(target)
        log(
            f"{profile.home} is not reachable by the '{profile.server_user}' user; "
            f"the cluster lives in {target}"
        )
    if is_root():
        shutil.chown(target, profile.server_user, profile.server_user)
    return target


# --------------------------------------------------------------------------- PostgreSQL


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
    """Create the application role and database and install pg_cron, idempotently.

    The script travels on psql's standard input, so the password never shows in argv;
    psql's :'var' interpolation quotes it as a literal.
    """
    script = (
        f"\\set role {APP_ROLE}\n\\set db {APP_DB}\n"
        f"\\set password {profile.secret('postgres')}\n" + BOOTSTRAP_SQL
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


# --------------------------------------------------------------------------- Redis


def redis_pid(profile: Profile) -> int | None:
    try:
        pid = int(profile.redis_pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_redis(profile: Profile) -> None:
    if redis_pid(profile):
        return
    if port_in_use(profile.redis_port):
        raise SetupError(
            f"port {profile.redis_port} on 127.0.0.1 is taken by another program, so the "
            f"embedded Redis cannot start.\nStop that program, or choose another port:\n"
            f"    ORCHESTRATOR_REDIS_PORT=<free port> make ..."
        )
    profile.redis_dir.mkdir(mode=0o700, exist_ok=True)
    conf = profile.redis_dir / "redis.conf"
    # A broker wants its queued messages to survive a restart: append-only file, fsync each
    # second; RDB snapshots would only add fork pauses.
    text = "\n".join(
        [
            "bind 127.0.0.1",
            f"port {profile.redis_port}",
            "protected-mode yes",
            f"requirepass {profile.secret('redis')}",
            "daemonize yes",
            f"pidfile {profile.redis_pidfile}",
            f"logfile {profile.redis_dir / 'redis.log'}",
            f"dir {profile.redis_dir}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "",
        ]
    )
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    log(f"starting Redis on 127.0.0.1:{profile.redis_port}")
    run([REDIS_SERVER, str(conf)], stdout=subprocess.DEVNULL)
    for _ in range(100):
        if redis_pid(profile) and port_in_use(profile.redis_port):
            return
        time.sleep(0.05)
    raise SetupError(f"Redis did not start; see {profile.redis_dir / 'redis.log'}")


def stop_redis(profile: Profile) -> None:
    pid = redis_pid(profile)
    if not pid:
        return
    log("stopping Redis")
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not redis_pid(profile):
            return
        time.sleep(0.05)


# --------------------------------------------------------------------------- commands


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
