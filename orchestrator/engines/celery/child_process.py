"""A job's program as a child that cannot outlive the worker running it.

Celery redelivers a run whose worker process died (``acks_late`` + ``reject_on_worker_lost``).
If the dead worker's program kept running, orphaned under PID 1, the redelivery would start a
second copy beside it, ``overlap: skip`` notwithstanding (the overlap lock died with the
worker's database session). So each program:

- gets ``PR_SET_PDEATHSIG = SIGKILL`` (Linux ``prctl``, set in the child between fork and exec):
  the kernel kills it the moment the worker process that started it dies, however it dies;
- runs in a session and process group of its own, so a timeout, a soft time limit or any
  error in the worker kills the whole tree it started (``killpg``), not only its first process.

A program that would start its own grandchildren and detach them from its group is beyond
this; the manifest's commands are client programs (pg_dump, psql, scripts) that do not.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence

logger = logging.getLogger(__name__)

#: <linux/prctl.h>
PR_SET_PDEATHSIG = 1


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None


_LIBC = _libc()


def die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` asking the kernel to SIGKILL the child when its parent dies.

    Runs in the forked child before exec: only async-signal-safe work (one syscall, one
    compare). If the parent died before the prctl took effect, the child is already orphaned
    and exits at once instead of running unsupervised.
    """

    def preexec() -> None:
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the program and everything in its process group; reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group has already gone
    except PermissionError:
        process.kill()
    process.wait()


def run_supervised(
    argv: Sequence[str], env: Mapping[str, str], timeout: float | None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell) tied to this process; kill its group on timeout or any error.

    Raises ``subprocess.TimeoutExpired`` after the timeout, ``FileNotFoundError`` for a
    missing program, and whatever interrupts the wait (a soft time limit) after the kill.
    """
    process = subprocess.Popen(
        list(argv),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=die_with(os.getpid()),  # one prctl call: fork-safe
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    # Anything that interrupts the wait (timeout, soft time limit, worker shutdown) must not
    # leave the program running: kill its group, then let the interruption go on.
    except BaseException:
        kill_group(process)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
