"""The embedded Redis: a loopback port, a password, an append-only file.

Part of ``scripts/services.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

from services_layout import REDIS_SERVER, Profile, SetupError, log, run


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
