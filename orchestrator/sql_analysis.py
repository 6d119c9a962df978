"""Facts about a job's SQL, from PostgreSQL's own parser (pglast/libpg_query).

The classifier needs to know, statement by statement: can it run inside a transaction block
(pg_cron sends a multi-statement command as one implicit transaction, so VACUUM, REINDEX
CONCURRENTLY and their kind must stand alone), does it reach outside the database (COPY ...
PROGRAM, server files, dblink, ``pg_read_file`` ...), which functions does it call (their
languages are looked up in ``pg_catalog`` through ``Capabilities``), and does it change roles or
control transactions (both refused outright). PL/pgSQL ``DO`` blocks are parsed too, so the SQL
inside them counts; dynamic SQL (``EXECUTE``) cannot be followed and is reported as such.

The JSON parse tree is used rather than pglast's Python AST: it is the same tree, an order of
magnitude cheaper to build, and the manifest may hold thousands of SQL jobs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pglast import parser

from orchestrator.sql_rules import (
    external_reason,
    non_transactional_label,
    privilege_label,
    role_change_label,
    scheduling_label,
    statement_label,
    transaction_label,
)


class SqlSyntaxError(ValueError):
    """PostgreSQL's parser refused the SQL; ``offset`` is a character index into it."""

    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A function the SQL calls, as written: ``schema`` only when qualified."""

    schema: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}()" if self.schema else f"{self.name}()"


@dataclass(frozen=True, kw_only=True, slots=True)
class Statement:
    """What one top-level statement does, as far as placement is concerned."""

    kind: str  # the parse node, e.g. "VacuumStmt"
    label: str  # words an operator knows, e.g. "VACUUM", "CREATE INDEX CONCURRENTLY"
    offset: int  # character offset of the statement in the SQL text
    transactional: bool = True  # False: cannot run inside a transaction block
    leaves_database: tuple[str, ...] = ()  # sentences: how it reaches outside the database
    unverifiable: tuple[str, ...] = ()  # sentences: what could not be checked
    role_change: str | None = None
    privilege: str | None = None  # changes privileges, ownership, databases, settings, schedules
    transaction_control: str | None = None
    client_copy: bool = False  # COPY ... FROM STDIN / TO STDOUT
    functions: tuple[FunctionRef, ...] = ()


@dataclass(frozen=True, slots=True)
class SqlProblem:
    """Something refused outright, at a character offset of the SQL."""

    offset: int
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SqlFacts:
    statements: tuple[Statement, ...]
    functions: tuple[FunctionRef, ...] = field(default=())

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(statement.label for statement in self.statements)

    @property
    def leaves_database(self) -> tuple[str, ...]:
        return tuple(reason for s in self.statements for reason in s.leaves_database)

    @property
    def unverifiable(self) -> tuple[str, ...]:
        return tuple(reason for s in self.statements for reason in s.unverifiable)

    @property
    def non_transactional(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if not s.transactional)

    def problems(self) -> list[SqlProblem]:
        """What makes the body invalid whichever engine runs it."""
        found: list[SqlProblem] = []
        if not self.statements:
            return [SqlProblem(0, "the SQL holds no statement")]
        for statement in self.statements:
            if statement.role_change:
                found.append(
                    SqlProblem(
                        statement.offset,
                        f"{statement.role_change} is refused: a job runs as the jobs role, "
                        "with only the privileges granted to it, and must not change roles",
                    )
                )
            if statement.privilege:
                found.append(
                    SqlProblem(
                        statement.offset,
                        f"{statement.privilege} is refused: scheduling jobs and changing "
                        "privileges, ownership or database settings is the operator's work, "
                        "never a job's (the jobs role may not do it)",
                    )
                )
            for reason in statement.unverifiable:
                found.append(
                    SqlProblem(
                        statement.offset,
                        f"{reason}: refused, because what it runs cannot be checked; put "
                        "the logic in a function installed by a migration and call that",
                    )
                )
            if statement.transaction_control:
                found.append(
                    SqlProblem(
                        statement.offset,
                        f"{statement.transaction_control} is refused: the body already runs as "
                        "one transaction (a statement such as VACUUM alone runs outside one)",
                    )
                )
            if statement.client_copy:
                found.append(
                    SqlProblem(
                        statement.offset,
                        "COPY ... FROM STDIN / TO STDOUT needs a client to stream the data; "
                        "neither pg_cron nor the SQL task has one (COPY to a table or query "
                        "works)",
                    )
                )
            if not statement.transactional and len(self.statements) > 1:
                found.append(
                    SqlProblem(
                        statement.offset,
                        f"{statement.label} cannot run inside a transaction block, and a body "
                        "of several statements runs as one transaction; give it a job of its own",
                    )
                )
        return found


def line_and_column(sql: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    offset = max(0, min(offset, len(sql)))
    line = sql.count("\n", 0, offset) + 1
    column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return line, column


#: every body this process has parsed, by its text. Unbounded on purpose: a bounded LRU cache
#: falls off a cliff once a manifest holds more distinct bodies than its size (each body is
#: looked up by validation, the capability lookup and the classifier, so an evicted body is
#: parsed again and again). The entries are small next to the manifest that brought them.
_FACTS: dict[str, SqlFacts] = {}


def analyse_sql(sql: str) -> SqlFacts:
    """Parse ``sql`` (once per process per distinct text) and describe each statement.

    Raises ``SqlSyntaxError`` (not cached: an invalid body stops the load anyway).
    """
    facts = _FACTS.get(sql)
    if facts is None:
        facts = _FACTS[sql] = _analyse(sql)
    return facts


def clear_cache() -> None:
    """Forget every parsed body (benchmarks start cold with it)."""
    _FACTS.clear()


analyse_sql.cache_clear = clear_cache  # type: ignore[attr-defined]  # the lru_cache spelling


def _analyse(sql: str) -> SqlFacts:
    try:
        tree = json.loads(parser.parse_sql_json(sql))
    except parser.ParseError as error:
        message = str(error.args[0]) if error.args else "syntax error"
        offset = error.args[1] if len(error.args) > 1 else None
        raise SqlSyntaxError(message, offset) from error
    to_chars = _char_offsets(sql)
    statements = []
    for raw in tree.get("stmts", ()):
        kind, node = next(iter(raw["stmt"].items()))
        offset = to_chars(raw.get("stmt_location", 0))
        statements.append(_statement(kind, node, offset, sql))
    functions = tuple(dict.fromkeys(ref for s in statements for ref in s.functions))
    return SqlFacts(statements=tuple(statements), functions=functions)


def _char_offsets(sql: str) -> Any:
    """libpg_query reports byte offsets; convert them for non-ASCII SQL."""
    if sql.isascii():
        return lambda offset: offset
    encoded = sql.encode("utf-8")
    return lambda offset: len(encoded[:offset].decode("utf-8", errors="ignore"))


def _statement(kind: str, node: dict[str, Any], offset: int, sql: str) -> Statement:
    collected = _Collector()
    collected.visit(kind, node)
    if kind == "DoStmt":
        collected.visit_do(node)
    blocking = non_transactional_label(kind, node)
    text = sql[offset:]
    return Statement(
        kind=kind,
        label=blocking or statement_label(kind, node, text),
        offset=offset,
        transactional=blocking is None,
        leaves_database=tuple(dict.fromkeys(collected.leaves)),
        unverifiable=tuple(dict.fromkeys(collected.unverifiable)),
        role_change=collected.role_change,
        privilege=collected.privilege,
        transaction_control=collected.transaction_control,
        client_copy=collected.client_copy,
        functions=tuple(dict.fromkeys(collected.functions)),
    )


class _Collector:
    """Walks one statement's parse tree (iteratively: trees can be deep) gathering facts."""

    def __init__(self) -> None:
        self.functions: list[FunctionRef] = []
        self.leaves: list[str] = []
        self.unverifiable: list[str] = []
        self.role_change: str | None = None
        self.privilege: str | None = None
        self.transaction_control: str | None = None
        self.client_copy = False

    def visit(self, kind: str, node: dict[str, Any]) -> None:
        self._node(kind, node)
        for child_kind, child in _nodes(node):
            self._node(child_kind, child)

    def _node(self, kind: str, node: dict[str, Any]) -> None:
        if kind == "FuncCall":
            self._function(node)
        elif kind == "CallStmt":  # its FuncCall is an inline field, not a wrapped node
            self._function(node.get("funccall") or {})
        elif kind == "CopyStmt":
            self._copy(node)
        elif kind == "LoadStmt":
            self.leaves.append("LOAD reads a library from the database server's file system")
        role = role_change_label(kind, node)
        if role and not self.role_change:
            self.role_change = role
        privilege = privilege_label(kind, node)
        if privilege and not self.privilege:
            self.privilege = privilege
        control = transaction_label(kind, node)
        if control and not self.transaction_control:
            self.transaction_control = control

    def _function(self, node: dict[str, Any]) -> None:
        parts = [item["String"]["sval"] for item in node.get("funcname", ()) if "String" in item]
        if not parts:
            return
        ref = FunctionRef(parts[-2] if len(parts) > 1 else None, parts[-1])
        self.functions.append(ref)
        reason = external_reason(ref.schema, ref.name)
        if reason:
            self.leaves.append(reason)
        scheduling = scheduling_label(ref.schema, ref.name)
        if scheduling and not self.privilege:
            self.privilege = scheduling
        if ref.name == "set_config" and not self.role_change:
            setting = _first_string_argument(node)
            if setting is None:
                # A name built at run time ('ro' || 'le') could be either of the two below.
                self.role_change = "set_config() of a setting named by an expression"
            elif setting.lower() in {"role", "session_authorization"}:
                self.role_change = f"set_config('{setting}', ...)"

    def _copy(self, node: dict[str, Any]) -> None:
        direction = "FROM" if node.get("is_from") else "TO"
        if node.get("is_program"):
            self.leaves.append(
                f"COPY ... {direction} PROGRAM runs a program on the database server"
            )
        elif node.get("filename"):
            self.leaves.append(
                f"COPY ... {direction} a file uses the database server's file system"
            )
        else:
            self.client_copy = True

    def visit_do(self, node: dict[str, Any]) -> None:
        options = {
            item["DefElem"]["defname"]: item["DefElem"].get("arg", {})
            for item in node.get("args", ())
            if "DefElem" in item
        }
        language = options.get("language", {}).get("String", {}).get("sval", "plpgsql")
        body = options.get("as", {}).get("String", {}).get("sval", "")
        if language != "plpgsql":
            reason = external_reason(None, None, language=language)
            if reason:
                self.leaves.append(reason)
            else:
                self.unverifiable.append(f"a DO block in {language} is not analysed")
            return
        self._plpgsql(body)

    def _plpgsql(self, body: str) -> None:
        tag = "$orchestrator_do$"
        while tag in body:
            tag = tag[:-1] + "_$"
        wrapped = f"CREATE FUNCTION do_block() RETURNS void LANGUAGE plpgsql AS {tag}{body}{tag}"
        try:
            tree = json.loads(parser.parse_plpgsql_json(wrapped))
        except parser.ParseError as error:
            self.unverifiable.append(f"the DO block does not parse as PL/pgSQL ({error})")
            return
        for kind, node in _nodes({"tree": tree}):
            if kind in {"PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors"}:
                self.unverifiable.append("the DO block runs dynamic SQL (EXECUTE), not checked")
            elif kind in {"PLpgSQL_stmt_commit", "PLpgSQL_stmt_rollback"}:
                self.transaction_control = self.transaction_control or kind[13:].upper()
            elif kind == "PLpgSQL_expr":
                self._embedded(node.get("query", ""), node.get("parseMode", 0))

    def _embedded(self, query: str, mode: int) -> None:
        if mode == 0:
            candidates = [query]
        else:  # an expression, or an assignment "target := expression"
            _, _, expression = query.rpartition(":=")
            candidates = [f"SELECT {expression or query}"]
        for text in candidates:
            try:
                tree = json.loads(parser.parse_sql_json(text))
            except parser.ParseError:
                self.unverifiable.append(f"the DO block's {query!r} was not understood")
                continue
            for raw in tree.get("stmts", ()):
                kind, node = next(iter(raw["stmt"].items()))
                self.visit(kind, node)


def _nodes(root: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (node name, node) under ``root``, depth first in source order (iteratively: parse
    trees can be deep). A node is a dict under a key that names it (``"FuncCall": {...}``)."""
    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            yield item
            stack.append(item[1])
        elif isinstance(item, dict):
            children: list[Any] = []
            for key, value in item.items():
                if isinstance(value, dict):
                    children.append((key, value) if key[:1].isupper() else value)
                elif isinstance(value, list):
                    children.append(value)
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _first_string_argument(node: dict[str, Any]) -> str | None:
    args = node.get("args") or ()
    if not args:
        return None
    constant = args[0].get("A_Const", {})
    value = constant.get("sval", {})
    return value.get("sval") if isinstance(value, dict) else None
