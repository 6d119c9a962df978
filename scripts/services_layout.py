"""Where a profile's embedded services live, its secrets, and the shared plumbing.

Part of ``scripts/services.py`` (standard library only: it runs before the virtualenv exists).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_CRON_LIB = Path("/usr/lib/postgresql/15/lib/pg_cron.so")
REDIS_SERVER = "redis-server"
APP_ROLE = "orchestrator"
# SQL jobs run as this role, never as APP_ROLE (scripts/jobs_role.sql, README "Security")
JOBS_ROLE = "orchestrator_jobs"
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

    def jobs_database_url(self) -> str:
        host = urllib.parse.quote(str(self.socket_dir), safe="")
        return f"postgresql://{JOBS_ROLE}:{self.secret('postgres-jobs')}@{host}/{APP_DB}"

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
