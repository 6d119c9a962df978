"""``manage.py bootstrap``: make a database and broker ready for the orchestrator, idempotently.

``make run`` and ``make test`` call it after starting the services: it checks that PostgreSQL,
pg_cron and Redis answer (with a message that says what to do when they don't), applies the
migrations, and makes sure an admin user exists. Credentials come from the settings
``DJANGO_SUPERUSER_USERNAME`` / ``DJANGO_SUPERUSER_PASSWORD`` (the environment variables Django's
own ``createsuperuser`` reads); without a password one is generated and printed once, the first
time.
"""

from __future__ import annotations

import secrets
import socket
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, connection

from orchestrator.engines import backends
from orchestrator.errors import OrchestratorError, ServiceError


class Command(BaseCommand):
    help = "Check the services, apply migrations and ensure an admin user exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, help="fail early when this web port on 127.0.0.1 is taken"
        )
        parser.add_argument("--no-admin", action="store_true", help="do not create an admin")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._database()
            for backend in backends().values():
                self.stdout.write(backend.ensure_ready())
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write("migrations applied")
            if not options["no_admin"]:
                self._admin(options["port"] or 8000)
            if options["port"]:
                self._port_free(options["port"])
        except OrchestratorError as error:
            raise CommandError(str(error)) from error

    def _database(self) -> None:
        try:
            connection.ensure_connection()
        except OperationalError as error:
            database = connection.settings_dict
            where = f"{database.get('HOST') or 'localhost'}/{database.get('NAME')}"
            reason = str(error).strip().splitlines()[-1]
            raise ServiceError(
                f"cannot connect to PostgreSQL at {where}: {reason}. Run `make services`, "
                "or set DATABASE_URL to a running PostgreSQL with pg_cron."
            ) from error

    def _admin(self, port: int) -> None:
        users = get_user_model()
        url = f"http://127.0.0.1:{port}/admin/"
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write(f"admin: {url} (existing admin account)")
            return
        username = settings.DJANGO_SUPERUSER_USERNAME or "admin"
        password = settings.DJANGO_SUPERUSER_PASSWORD
        generated = not password
        password = password or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"admin: {url}\n  user: {username}\n  password: {password}\n"
                    "  (shown once; change it in the admin, or set DJANGO_SUPERUSER_PASSWORD "
                    "before the first run)"
                )
            )
        else:
            self.stdout.write(f"admin: {url} (user {username!r} from the environment)")

    def _port_free(self, port: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise ServiceError(
                    f"port {port} on 127.0.0.1 is taken by another program, so the web "
                    f"server cannot start. Stop it, or run `make run PORT=<free port>`."
                )
