"""The suite's own harness on the real database: what keeps teardown exact beside a busy worker."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_flush__retries_after_losing_a_deadlock() -> None:
    """A teardown flush that deadlocks with another writer is retried and then empties the tables.

    Another session holds one table and then asks for the one TRUNCATE already locked: PostgreSQL
    aborts the flush (it waited first, so its deadlock check fires first), and the retry succeeds
    once the other session commits.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE harness_probe_a (id int); CREATE TABLE harness_probe_b (id int)"
        )
        cursor.execute(
            "INSERT INTO harness_probe_a VALUES (1); INSERT INTO harness_probe_b VALUES (1)"
        )
    dsn = connection.get_connection_params()
    holding = threading.Event()
    errors: list[BaseException] = []

    def other_writer() -> None:
        try:
            with psycopg.connect(
                **{k: v for k, v in dsn.items() if k != "cursor_factory"}
            ) as other:
                other.execute("LOCK TABLE harness_probe_b IN ROW EXCLUSIVE MODE")
                holding.set()
                # Wait until the flush holds probe_a and waits for probe_b, then ask for probe_a.
                for _ in range(50):
                    row = other.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted"
                        " AND relation = 'harness_probe_b'::regclass"
                    ).fetchone()
                    if row and row[0]:
                        break
                    threading.Event().wait(0.05)
                other.execute("INSERT INTO harness_probe_a VALUES (2)")
        except psycopg.Error as exc:  # the test reports it below
            errors.append(exc)

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        assert holding.wait(10)
        attempts: list[str] = []

        def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            attempts.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            connection.ops.execute_sql_flush(["TRUNCATE harness_probe_a, harness_probe_b"])
        # The first TRUNCATE lost the deadlock, the second one landed.
        assert len(attempts) == 2
        thread.join(20)
        assert not errors
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT count(*) FROM harness_probe_a),"
                " (SELECT count(*) FROM harness_probe_b)"
            )
            # The other writer's row landed after the flush lost the deadlock; the retry removed it.
            assert cursor.fetchone() == (0, 0)
    finally:
        thread.join(20)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE harness_probe_a, harness_probe_b")
