"""The rules ``sql_analysis`` applies to parse nodes, kept apart so they read as a table.

Sources: PostgreSQL 15's ``PreventInTransactionBlock`` call sites (VACUUM, CREATE/DROP INDEX
CONCURRENTLY, REINDEX CONCURRENTLY and REINDEX SCHEMA/SYSTEM/DATABASE, CREATE/DROP DATABASE,
ALTER DATABASE SET TABLESPACE, CREATE/DROP TABLESPACE, ALTER SYSTEM, subscriptions, CLUSTER of
all tables, DETACH PARTITION CONCURRENTLY, DISCARD ALL) and the server's functions that read
or write the server's files or open connections elsewhere.
"""

from __future__ import annotations

from typing import Any

#: Built-in and well-known extension functions that reach outside the database.
EXTERNAL_FUNCTIONS = {
    "pg_read_file": "reads the database server's files",
    "pg_read_binary_file": "reads the database server's files",
    "pg_stat_file": "inspects the database server's files",
    "pg_ls_dir": "lists the database server's directories",
    "pg_ls_logdir": "lists the database server's directories",
    "pg_ls_waldir": "lists the database server's directories",
    "pg_ls_tmpdir": "lists the database server's directories",
    "pg_ls_archive_statusdir": "lists the database server's directories",
    "pg_ls_logicalsnapdir": "lists the database server's directories",
    "pg_ls_logicalmapdir": "lists the database server's directories",
    "pg_ls_replslotdir": "lists the database server's directories",
    "pg_current_logfile": "inspects the database server's files",
    "lo_import": "reads a file on the database server",
    "lo_export": "writes a file on the database server",
    "pg_file_write": "writes the database server's files (adminpack)",
    "pg_file_rename": "renames the database server's files (adminpack)",
    "pg_file_unlink": "deletes the database server's files (adminpack)",
    "pg_file_sync": "touches the database server's files (adminpack)",
    "pg_logdir_ls": "lists the database server's directories (adminpack)",
}
#: Name prefixes of functions that open connections to other systems.
EXTERNAL_PREFIXES = {
    "dblink": "connects to another database (dblink)",
    "http_": "makes HTTP requests (pgsql-http / pg_net)",
}
#: Schemas whose functions all talk to other systems.
EXTERNAL_SCHEMAS = {
    "aws_s3": "talks to Amazon S3 (aws_s3)",
    "aws_lambda": "calls AWS Lambda (aws_lambda)",
    "net": "makes HTTP requests (pg_net)",
}
#: Procedural languages without the sandbox of a trusted language.
UNTRUSTED_LANGUAGES = frozenset(
    {"plpython3u", "plpythonu", "plpython2u", "plperlu", "pltclu", "plsh", "plr", "pljavau"}
)


def external_reason(schema: str | None, name: str | None, *, language: str | None = None) -> str:
    """Why a function (or a DO block's language) reaches outside the database, else ''."""
    if language is not None:
        if language in UNTRUSTED_LANGUAGES:
            return (
                f"a DO block in {language}, an untrusted language, can reach outside the database"
            )
        return ""
    if name is None:
        return ""
    if schema in EXTERNAL_SCHEMAS:
        return f"{schema}.{name}() {EXTERNAL_SCHEMAS[schema]}"
    # Matched in any schema: extensions may be installed anywhere, and a false alarm only
    # sends the job to Celery, where it runs just the same.
    qualified = f"{schema}.{name}()" if schema else f"{name}()"
    if name in EXTERNAL_FUNCTIONS:
        return f"{qualified} {EXTERNAL_FUNCTIONS[name]}"
    for prefix, what in EXTERNAL_PREFIXES.items():
        if name.startswith(prefix):
            return f"{qualified} {what}"
    return ""


def _options(node: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        item["DefElem"]["defname"]: item["DefElem"].get("arg")
        for item in node.get(key) or ()
        if "DefElem" in item
    }


def _enabled(value: Any) -> bool:
    """A DefElem flag: present without value, or with a true-ish value."""
    if value is None:
        return True
    if "Boolean" in value:
        return bool(value["Boolean"].get("boolval"))
    text = str(value.get("String", {}).get("sval", "true")).lower()
    return text not in {"false", "off", "0", "no"}


_REINDEX_WIDE = {
    "REINDEX_OBJECT_SCHEMA": "REINDEX SCHEMA",
    "REINDEX_OBJECT_SYSTEM": "REINDEX SYSTEM",
    "REINDEX_OBJECT_DATABASE": "REINDEX DATABASE",
}
_ALWAYS_OUTSIDE = {
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
    "DropSubscriptionStmt": "DROP SUBSCRIPTION",
}


def non_transactional_label(kind: str, node: dict[str, Any]) -> str | None:
    """The statement's name when it cannot run inside a transaction block, else None."""
    if kind in _ALWAYS_OUTSIDE:
        return _ALWAYS_OUTSIDE[kind]
    if kind == "VacuumStmt":
        return "VACUUM" if node.get("is_vacuumcmd") else None
    if kind == "IndexStmt":
        return "CREATE INDEX CONCURRENTLY" if node.get("concurrent") else None
    if kind == "DropStmt":
        return "DROP INDEX CONCURRENTLY" if node.get("concurrent") else None
    if kind == "ReindexStmt":
        options = _options(node, "params")
        if "concurrently" in options and _enabled(options["concurrently"]):
            return "REINDEX CONCURRENTLY"
        return _REINDEX_WIDE.get(node.get("kind", ""))
    if kind == "AlterDatabaseStmt":
        return (
            "ALTER DATABASE SET TABLESPACE" if "tablespace" in _options(node, "options") else None
        )
    if kind == "AlterSubscriptionStmt":
        refresh = node.get("kind") == "ALTER_SUBSCRIPTION_REFRESH"
        return "ALTER SUBSCRIPTION ... REFRESH PUBLICATION" if refresh else None
    if kind == "ClusterStmt":
        return None if node.get("relation") else "CLUSTER (every table)"
    if kind == "DiscardStmt":
        return "DISCARD ALL" if node.get("target") == "DISCARD_ALL" else None
    if kind == "AlterTableStmt":
        for item in node.get("cmds") or ():
            command = item.get("AlterTableCmd", {})
            partition = (command.get("def") or {}).get("PartitionCmd", {})
            if command.get("subtype") == "AT_DetachPartition" and partition.get("concurrent"):
                return "ALTER TABLE ... DETACH PARTITION CONCURRENTLY"
    return None


_ROLE_STATEMENTS = {
    "CreateRoleStmt": "CREATE ROLE",
    "AlterRoleStmt": "ALTER ROLE",
    "AlterRoleSetStmt": "ALTER ROLE ... SET",
    "DropRoleStmt": "DROP ROLE",
}


def role_change_label(kind: str, node: dict[str, Any]) -> str | None:
    """The statement's name when it switches or changes roles, else None."""
    if kind in _ROLE_STATEMENTS:
        return _ROLE_STATEMENTS[kind]
    if kind == "GrantRoleStmt":
        return "GRANT role" if node.get("is_grant") else "REVOKE role"
    if kind == "RenameStmt" and node.get("renameType") == "OBJECT_ROLE":
        return "ALTER ROLE ... RENAME"
    if kind == "VariableSetStmt" and node.get("name") in {"role", "session_authorization"}:
        verb = "RESET" if node.get("kind") == "VAR_RESET" else "SET"
        what = "ROLE" if node["name"] == "role" else "SESSION AUTHORIZATION"
        return f"{verb} {what}"
    return None


#: Statements that change privileges, ownership, databases or the server's settings: the
#: operator's business, never a job's (the jobs role could not do them anyway; README "Security").
_PRIVILEGE_STATEMENTS = {
    "AlterDefaultPrivilegesStmt": "ALTER DEFAULT PRIVILEGES",
    "AlterOwnerStmt": "ALTER ... OWNER TO",
    "ReassignOwnedStmt": "REASSIGN OWNED",
    "DropOwnedStmt": "DROP OWNED",
    "AlterDatabaseStmt": "ALTER DATABASE",
    "AlterDatabaseSetStmt": "ALTER DATABASE ... SET",
    "AlterDatabaseRefreshCollStmt": "ALTER DATABASE ... REFRESH COLLATION VERSION",
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM",
}
#: Schemas whose functions schedule, alter or remove pg_cron jobs (scripts/jobs_role.sql).
SCHEDULING_SCHEMAS = frozenset({"cron", "orchestrator_cron"})
#: pg_cron's scheduling functions whose names are unmistakable even unqualified.
SCHEDULING_FUNCTIONS = frozenset({"schedule_in_database", "alter_job", "unschedule"})


def privilege_label(kind: str, node: dict[str, Any]) -> str | None:
    """The statement's name when it changes privileges, ownership or database settings."""
    if kind in _PRIVILEGE_STATEMENTS:
        return _PRIVILEGE_STATEMENTS[kind]
    if kind == "GrantStmt":
        return "GRANT" if node.get("is_grant") else "REVOKE"
    if kind == "AlterTableStmt":
        for item in node.get("cmds") or ():
            if item.get("AlterTableCmd", {}).get("subtype") == "AT_ChangeOwner":
                return "ALTER TABLE ... OWNER TO"
    return None


def scheduling_label(schema: str | None, name: str) -> str | None:
    """``cron.schedule()`` and its kind: a job must not schedule jobs the manifest does not hold."""
    if schema in SCHEDULING_SCHEMAS or (schema is None and name in SCHEDULING_FUNCTIONS):
        return f"{schema}.{name}()" if schema else f"{name}()"
    return None


_TRANSACTION_KINDS = {
    "TRANS_STMT_BEGIN": "BEGIN",
    "TRANS_STMT_START": "START TRANSACTION",
    "TRANS_STMT_COMMIT": "COMMIT",
    "TRANS_STMT_ROLLBACK": "ROLLBACK",
    "TRANS_STMT_SAVEPOINT": "SAVEPOINT",
    "TRANS_STMT_RELEASE": "RELEASE SAVEPOINT",
    "TRANS_STMT_ROLLBACK_TO": "ROLLBACK TO SAVEPOINT",
    "TRANS_STMT_PREPARE": "PREPARE TRANSACTION",
    "TRANS_STMT_COMMIT_PREPARED": "COMMIT PREPARED",
    "TRANS_STMT_ROLLBACK_PREPARED": "ROLLBACK PREPARED",
}


def transaction_label(kind: str, node: dict[str, Any]) -> str | None:
    if kind != "TransactionStmt":
        return None
    return _TRANSACTION_KINDS.get(node.get("kind", ""), "transaction control")


_LABELS = {
    "SelectStmt": "SELECT",
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
    "CallStmt": "CALL",
    "DoStmt": "DO",
    "TruncateStmt": "TRUNCATE",
    "CopyStmt": "COPY",
    "ReindexStmt": "REINDEX",
    "ClusterStmt": "CLUSTER",
    "CheckPointStmt": "CHECKPOINT",
    "IndexStmt": "CREATE INDEX",
    "NotifyStmt": "NOTIFY",
    "LockStmt": "LOCK",
    "LoadStmt": "LOAD",
}


def statement_label(kind: str, node: dict[str, Any], text: str) -> str:
    """A short name for a statement: a known one, else its first keyword."""
    if kind == "VacuumStmt":
        return "ANALYZE"  # VACUUM proper is labelled by non_transactional_label
    if kind == "RefreshMatViewStmt":
        concurrently = " CONCURRENTLY" if node.get("concurrent") else ""
        return f"REFRESH MATERIALIZED VIEW{concurrently}"
    if kind in _LABELS:
        return _LABELS[kind]
    words = text.split(None, 1)
    return words[0].upper().rstrip(";") if words else kind
