"""SQL facts from PostgreSQL's parser: transactions, leaving the database, roles, functions."""

from __future__ import annotations

import pytest

from orchestrator.sql_analysis import FunctionRef, SqlSyntaxError, analyse_sql, line_and_column

ROLE_REASON = (
    "a job runs as the jobs role, with only the privileges granted to it, and must not change roles"
)


@pytest.mark.parametrize(
    ("sql", "label", "transactional"),
    [
        ("VACUUM", "VACUUM", False),
        ("VACUUM (ANALYZE, VERBOSE) events", "VACUUM", False),
        ("ANALYZE events", "ANALYZE", True),
        ("CREATE INDEX CONCURRENTLY i ON t (x)", "CREATE INDEX CONCURRENTLY", False),
        ("CREATE INDEX i ON t (x)", "CREATE INDEX", True),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY", False),
        ("REINDEX TABLE CONCURRENTLY t", "REINDEX CONCURRENTLY", False),
        ("REINDEX (CONCURRENTLY false) TABLE t", "REINDEX", True),
        ("REINDEX TABLE t", "REINDEX", True),
        ("REINDEX SCHEMA public", "REINDEX SCHEMA", False),
        ("REINDEX DATABASE app", "REINDEX DATABASE", False),
        ("CREATE DATABASE scratch", "CREATE DATABASE", False),
        ("DROP DATABASE scratch", "DROP DATABASE", False),
        ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM", False),
        ("CLUSTER", "CLUSTER (every table)", False),
        ("CLUSTER events USING events_pkey", "CLUSTER", True),
        (
            "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
            "ALTER TABLE ... DETACH PARTITION CONCURRENTLY",
            False,
        ),
        ("DISCARD ALL", "DISCARD ALL", False),
        (
            "REFRESH MATERIALIZED VIEW CONCURRENTLY m",
            "REFRESH MATERIALIZED VIEW CONCURRENTLY",
            True,
        ),
        ("DELETE FROM events WHERE created_at < now() - interval '30 days'", "DELETE", True),
        (
            "WITH old AS (SELECT id FROM t) DELETE FROM t USING old WHERE t.id = old.id",
            "DELETE",
            True,
        ),
        ("CALL sql_jobs.rollup()", "CALL", True),
        ("CHECKPOINT", "CHECKPOINT", True),
    ],
)
def test_analyse_sql__transaction_block(sql: str, label: str, transactional: bool) -> None:
    """Statements PostgreSQL refuses inside a transaction block are recognised, and named."""
    (statement,) = analyse_sql(sql).statements
    assert (statement.label, statement.transactional) == (label, transactional)


@pytest.mark.parametrize(
    ("sql", "leaves"),
    [
        (
            "COPY t TO PROGRAM 'gzip > /tmp/t.gz'",
            ("COPY ... TO PROGRAM runs a program on the database server",),
        ),
        (
            "COPY t FROM '/srv/data.csv'",
            ("COPY ... FROM a file uses the database server's file system",),
        ),
        (
            "SELECT pg_read_file('/etc/passwd')",
            ("pg_read_file() reads the database server's files",),
        ),
        (
            "SELECT pg_catalog.pg_ls_dir('.')",
            ("pg_catalog.pg_ls_dir() lists the database server's directories",),
        ),
        ("SELECT lo_export(1, '/tmp/x')", ("lo_export() writes a file on the database server",)),
        (
            "SELECT * FROM dblink('host=x', 'select 1') AS t(x int)",
            ("dblink() connects to another database (dblink)",),
        ),
        (
            "SELECT ext.dblink_exec('select 1')",
            ("ext.dblink_exec() connects to another database (dblink)",),
        ),
        (
            "SELECT net.http_get('https://example.com')",
            ("net.http_get() makes HTTP requests (pg_net)",),
        ),
        ("LOAD 'auto_explain'", ("LOAD reads a library from the database server's file system",)),
        (
            "DO LANGUAGE plpython3u $$ import os $$",
            ("a DO block in plpython3u, an untrusted language, can reach outside the database",),
        ),
        ("DELETE FROM t WHERE id IN (SELECT id FROM t WHERE lower(name) = 'x')", ()),
        ("INSERT INTO copies SELECT * FROM t", ()),
    ],
)
def test_analyse_sql__leaving_the_database(sql: str, leaves: tuple[str, ...]) -> None:
    """Server programs, server files and connections elsewhere are named, sentence by sentence."""
    assert analyse_sql(sql).leaves_database == leaves


def test_analyse_sql__functions_collected_with_schema() -> None:
    """Every function called, in order and once, with its schema when qualified (CALL too)."""
    facts = analyse_sql(
        "SELECT refresh_metrics(now()); SELECT sql_jobs.prune_events(30), count(*) FROM t; "
        "CALL sql_jobs.rollup(); SELECT refresh_metrics(now())"
    )
    assert facts.functions == (
        FunctionRef(None, "refresh_metrics"),
        FunctionRef(None, "now"),
        FunctionRef("sql_jobs", "prune_events"),
        FunctionRef(None, "count"),
        FunctionRef("sql_jobs", "rollup"),
    )
    assert str(facts.functions[2]) == "sql_jobs.prune_events()"


def test_analyse_sql__do_block_is_followed() -> None:
    """The SQL inside a PL/pgSQL DO block counts: its functions, and what it reaches."""
    facts = analyse_sql(
        "DO $$ DECLARE n int; BEGIN n := learn_patterns(); "
        "PERFORM pg_read_file('x'); IF n > 0 THEN DELETE FROM t WHERE compute_pagerank(n); "
        "END IF; END $$"
    )
    (statement,) = facts.statements
    assert set(statement.functions) == {
        FunctionRef(None, "learn_patterns"),
        FunctionRef(None, "pg_read_file"),
        FunctionRef(None, "compute_pagerank"),
    }
    assert statement.leaves_database == ("pg_read_file() reads the database server's files",)
    assert statement.unverifiable == ()


def test_analyse_sql__dynamic_sql_is_unverifiable() -> None:
    """EXECUTE in a DO block cannot be followed, and says so rather than passing silently."""
    facts = analyse_sql("DO $$ BEGIN EXECUTE 'VACUUM ' || 't'; END $$")
    assert facts.unverifiable == ("the DO block runs dynamic SQL (EXECUTE), not checked",)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SET ROLE admin",
            "SET ROLE is refused: " + ROLE_REASON,
        ),
        (
            "RESET ROLE",
            "RESET ROLE is refused: " + ROLE_REASON,
        ),
        (
            "SET LOCAL SESSION AUTHORIZATION bob",
            "SET SESSION AUTHORIZATION is refused: " + ROLE_REASON,
        ),
        (
            "ALTER ROLE app SUPERUSER",
            "ALTER ROLE is refused: " + ROLE_REASON,
        ),
        (
            "CREATE ROLE intruder LOGIN",
            "CREATE ROLE is refused: " + ROLE_REASON,
        ),
        (
            "GRANT admin TO app",
            "GRANT role is refused: " + ROLE_REASON,
        ),
        (
            "SELECT set_config('role', 'admin', false)",
            "set_config('role', ...) is refused: " + ROLE_REASON,
        ),
        (
            "BEGIN",
            "BEGIN is refused: the body already runs as one transaction (a statement such as "
            "VACUUM "
            "alone runs outside one)",
        ),
        (
            "DO $$ BEGIN DELETE FROM t; COMMIT; END $$",
            "COMMIT is refused: the body already runs as one transaction (a statement such as "
            "VACUUM alone runs outside one)",
        ),
        (
            "COPY t TO STDOUT",
            "COPY ... FROM STDIN / TO STDOUT needs a client to stream the data; neither "
            "pg_cron nor "
            "the SQL task has one (COPY to a table or query works)",
        ),
        ("-- nothing but a comment", "the SQL holds no statement"),
    ],
)
def test_analyse_sql__refused_outright(sql: str, message: str) -> None:
    """Role changes, transaction control, client COPY and empty bodies are problems."""
    assert [problem.message for problem in analyse_sql(sql).problems()] == [message]


PRIVILEGE_REASON = (
    "is refused: scheduling jobs and changing privileges, ownership or database settings is the "
    "operator's work, never a job's (the jobs role may not do it)"
)
UNCHECKED_REASON = (
    ": refused, because what it runs cannot be checked; put the logic in a function installed "
    "by a migration and call that"
)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("GRANT SELECT ON auth_user TO PUBLIC", f"GRANT {PRIVILEGE_REASON}"),
        ("REVOKE ALL ON events FROM app", f"REVOKE {PRIVILEGE_REASON}"),
        (
            "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC",
            f"ALTER DEFAULT PRIVILEGES {PRIVILEGE_REASON}",
        ),
        ("ALTER TABLE events OWNER TO app", f"ALTER TABLE ... OWNER TO {PRIVILEGE_REASON}"),
        ("ALTER FUNCTION f() OWNER TO app", f"ALTER ... OWNER TO {PRIVILEGE_REASON}"),
        (
            "ALTER DATABASE orchestrator SET work_mem = '1GB'",
            f"ALTER DATABASE ... SET {PRIVILEGE_REASON}",
        ),
        ("ALTER DATABASE orchestrator CONNECTION LIMIT 1", f"ALTER DATABASE {PRIVILEGE_REASON}"),
        (
            "SELECT cron.schedule('hidden', '* * * * *', 'SELECT 1')",
            f"cron.schedule() {PRIVILEGE_REASON}",
        ),
        ("SELECT cron.unschedule(1)", f"cron.unschedule() {PRIVILEGE_REASON}"),
        ("SELECT alter_job(1, active => false)", f"alter_job() {PRIVILEGE_REASON}"),
        (
            "SELECT orchestrator_cron.schedule('x', '* * * * *', 'SELECT 1', 'db', true)",
            f"orchestrator_cron.schedule() {PRIVILEGE_REASON}",
        ),
        (
            "DO $$ BEGIN PERFORM cron.schedule('x', '* * * * *', 'SELECT 1'); END $$",
            f"cron.schedule() {PRIVILEGE_REASON}",
        ),
        (
            "SELECT set_config('ro' || 'le', 'orchestrator', false)",
            "set_config() of a setting named by an expression is refused: " + ROLE_REASON,
        ),
        (
            "SELECT set_config('ROLE', 'x', false)",
            "set_config('ROLE', ...) is refused: " + ROLE_REASON,
        ),
        (
            "DO $$ BEGIN EXECUTE 'SET ROLE orchestrator'; END $$",
            f"the DO block runs dynamic SQL (EXECUTE), not checked{UNCHECKED_REASON}",
        ),
        (
            "DO LANGUAGE plperl $$ 1; $$",
            f"a DO block in plperl is not analysed{UNCHECKED_REASON}",
        ),
    ],
)
def test_analyse_sql__privileged_statements_refused(sql: str, message: str) -> None:
    """What only the operator may do (schedule pg_cron jobs, grant, change owners, database or
    server settings, roles even through a computed set_config name) and what cannot be checked
    (dynamic SQL) is refused with a reason; there is no opt-in (README, Security)."""
    assert [problem.message for problem in analyse_sql(sql).problems()] == [message]


def test_analyse_sql__ordinary_settings_and_functions_pass() -> None:
    """set_config of an ordinary setting, a function named like pg_cron's ``schedule`` in the
    job's own schema, and a DO block of static SQL are not refused."""
    for sql in (
        "SELECT set_config('work_mem', '64MB', true)",
        "SELECT platform.schedule_review(1)",
        "DO $$ BEGIN DELETE FROM events WHERE id < 10; END $$",
    ):
        assert analyse_sql(sql).problems() == [], sql


def test_analyse_sql__non_transactional_must_stand_alone() -> None:
    """VACUUM alone is fine; VACUUM with another statement is refused at VACUUM's offset."""
    assert analyse_sql("VACUUM ANALYZE events").problems() == []
    sql = "DELETE FROM events;\nVACUUM events"
    (problem,) = analyse_sql(sql).problems()
    assert problem.offset == sql.index("VACUUM")
    assert problem.message == (
        "VACUUM cannot run inside a transaction block, and a body of several statements runs "
        "as one transaction; give it a job of its own"
    )


def test_analyse_sql__syntax_error_is_located() -> None:
    """PostgreSQL's own message, and a character offset that maps to line and column."""
    sql = "SELECT 1;\nSELEC 2;"
    with pytest.raises(SqlSyntaxError) as caught:
        analyse_sql(sql)
    assert caught.value.message == 'syntax error at or near "SELEC"'
    assert line_and_column(sql, caught.value.offset or 0) == (2, 1)


def test_analyse_sql__offsets_are_characters_for_non_ascii() -> None:
    """libpg_query counts bytes; offsets are converted so 'é' does not shift lines."""
    sql = "SELECT 'é';\nVACUUM"
    statements = analyse_sql(sql).statements
    assert statements[1].offset == sql.index("VACUUM")
    assert line_and_column(sql, statements[1].offset) == (2, 1)
