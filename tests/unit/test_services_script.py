"""scripts/services.py gives a clear message for set-up problems instead of a traceback."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_services() -> ModuleType:
    spec = importlib.util.spec_from_file_location("services", ROOT / "scripts" / "services.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["services"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def services() -> ModuleType:
    return load_services()


def test_ensure_packages__non_root_missing_package_gives_the_exact_command(
    services: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As non-root, a missing Debian package stops set-up with the apt-get line to run."""
    layout = sys.modules["services_layout"]
    monkeypatch.setattr(layout, "is_root", lambda: False)
    monkeypatch.setattr(
        layout,
        "PACKAGES",
        {"postgresql-15-cron": tmp_path / "absent.so", "redis-server": Path(sys.executable)},
    )
    with pytest.raises(services.SetupError) as caught:
        layout.ensure_packages()
    message = str(caught.value)
    assert "missing Debian packages: postgresql-15-cron" in message
    assert "sudo apt-get update && sudo apt-get install -y postgresql-15-cron" in message


def test_start_redis__port_taken_names_the_port_and_the_way_out(
    services: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """When another program holds the Redis port, start-up says so and how to choose another."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        monkeypatch.setenv("ORCHESTRATOR_REDIS_PORT", str(port))
        profile = services.Profile("test")
        profile.home = tmp_path
        with pytest.raises(services.SetupError) as caught:
            sys.modules["services_redis"].start_redis(profile)
    message = str(caught.value)
    assert f"port {port} on 127.0.0.1 is taken by another program" in message
    assert "ORCHESTRATOR_REDIS_PORT=<free port>" in message


def test_main__setup_error_exits_1_with_message_and_no_traceback(
    services: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command-line entry turns a SetupError into one stderr line and exit code 1."""

    def fail(profile: object, quiet: bool) -> None:
        raise services.SetupError("something is wrong")

    monkeypatch.setattr(services, "start", fail)
    assert services.main(["start", "--profile", "test"]) == 1
    err = capsys.readouterr().err
    assert err == "services: error: something is wrong\n"


def test_postgres_conf__preloads_pg_cron_for_the_app_database(services: ModuleType) -> None:
    """The cluster preloads pg_cron, points it at the application database, runs jobs in
    background workers and listens on its private socket only."""
    profile = services.Profile("dev")
    conf = sys.modules["services_postgres"].postgres_conf(profile)
    assert "shared_preload_libraries = 'pg_cron'" in conf
    assert "cron.database_name = 'orchestrator'" in conf
    assert "cron.use_background_workers = on" in conf
    assert f"cron.host = '{profile.socket_dir}'" in conf
    assert "listen_addresses = ''" in conf
    assert "fsync = off" not in conf


def test_database_url__points_at_the_socket_folder(services: ModuleType, tmp_path: Path) -> None:
    """The URL encodes the socket folder as the host, as libpq and dj-database-url expect."""
    import dj_database_url

    profile = services.Profile("test")
    profile.home = tmp_path
    parsed = dj_database_url.parse(profile.database_url())
    assert parsed["HOST"] == str(profile.socket_dir)
    assert parsed["NAME"] == "orchestrator"
    assert parsed["USER"] == "orchestrator"
    assert (tmp_path / "secrets" / "postgres").stat().st_mode & 0o777 == 0o600
