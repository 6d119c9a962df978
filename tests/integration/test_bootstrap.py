"""``manage.py bootstrap`` prepares the services or says clearly what is wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, service_env


def run_bootstrap(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "bootstrap", "--no-admin"],
        cwd=ROOT,
        env=service_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bootstrap__ready_services_pass_every_check() -> None:
    """On the test profile's services, bootstrap reports pg_cron, Redis and migrations."""
    result = run_bootstrap()
    assert result.returncode == 0, result.stderr
    assert "pg_cron 1.4" in result.stdout
    assert "Redis answers" in result.stdout
    assert "migrations applied" in result.stdout


def test_bootstrap__unreachable_database_is_one_clear_line() -> None:
    """A DATABASE_URL pointing nowhere exits 1 with what to do, and no traceback."""
    result = run_bootstrap(DATABASE_URL="postgresql://someone:pw@%2Fnonexistent%2Fsocket/db")
    assert result.returncode == 1
    assert "cannot connect to PostgreSQL at /nonexistent/socket/db" in result.stderr
    assert "make services" in result.stderr
    assert "Traceback" not in result.stderr


def test_bootstrap__wrong_redis_password_is_refused_and_not_echoed() -> None:
    """Redis refuses a client without the right password; the message hides the password."""
    from django.conf import settings

    wrong = settings.REDIS_URL.replace("redis://:", "redis://:wrong", 1)
    result = run_bootstrap(REDIS_URL=wrong)
    assert result.returncode == 1
    assert "Redis at redis://:***@127.0.0.1" in result.stderr
    real_password = settings.REDIS_URL.split("@")[0].rsplit(":", 1)[1]
    assert real_password not in result.stderr
    assert "Traceback" not in result.stderr


def test_bootstrap__redis_without_password_is_refused() -> None:
    """The embedded Redis refuses clients that do not authenticate."""
    import redis
    from django.conf import settings

    anonymous = "redis://" + settings.REDIS_URL.split("@", 1)[1]
    client = redis.Redis.from_url(anonymous)
    with pytest.raises(redis.AuthenticationError):
        client.ping()
