"""Registry sync: run the analyzers over the ingested code and store a registry snapshot.

The analyzers are small AST checks (missing docstrings, broad ``except``, long functions,
``shell=True``, TODO markers). Their findings go to ``platform.analysis_results``, each with a
fingerprint of (rule, place, chunk text), so re-analysing unchanged code adds nothing; pattern
learning (``platform.learn_patterns_from_analysis()``, every 5 minutes in pg_cron) counts them.
The snapshot records what the system holds (registered Celery tasks, pg_cron jobs, chunks,
templates, findings per rule) and is stored only when it differs from the latest one.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import logging
import re
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from celery import current_app, shared_task
from django.db import connection, transaction

from tasks import conf

logger = logging.getLogger(__name__)

LONG_FUNCTION_LINES = 60
_TODO = re.compile(r"#\s*(TODO|FIXME|XXX)\b")


@dataclass(frozen=True, slots=True)
class Finding:
    analyzer: str
    category: str
    rule: str
    severity: str
    line: int
    message: str


def _parse(content: str) -> ast.Module | None:
    try:
        return ast.parse(textwrap.dedent(content))
    except (SyntaxError, ValueError):
        return None


def analyze(content: str, start_line: int = 1) -> Iterator[Finding]:
    """The findings of one Python chunk; line numbers are the file's."""
    offset = start_line - 1
    for number, text in enumerate(content.splitlines(), start=start_line):
        if _TODO.search(text):
            yield Finding("markers", "maintenance", "todo-comment", "info", number,
                          "a TODO/FIXME marker is left in the code")  # fmt: skip
    tree = _parse(content)
    if tree is None:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if not node.name.startswith("_") and ast.get_docstring(node) is None:
                yield Finding("docs", "documentation", "missing-docstring", "info",
                              node.lineno + offset, f"{node.name} has no docstring")  # fmt: skip
            if not isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > LONG_FUNCTION_LINES:
                    message = f"{node.name} is {length} lines long"
                    yield Finding("size", "complexity", "long-function", "warning",
                                  node.lineno + offset, message)  # fmt: skip
        elif isinstance(node, ast.ExceptHandler):
            caught = node.type
            if caught is None or (
                isinstance(caught, ast.Name) and caught.id in {"Exception", "BaseException"}
            ):
                yield Finding("errors", "error-handling", "broad-except", "warning",
                              node.lineno + offset, "catches every exception")  # fmt: skip
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if (
                    keyword.arg == "shell"
                    and isinstance(keyword.value, ast.Constant)
                    and keyword.value.value is True
                ):
                    yield Finding("security", "security", "subprocess-shell", "error",
                                  node.lineno + offset, "runs a command in a shell")  # fmt: skip


def analyze_repository(repo: str | None = None) -> dict[str, int]:
    """Analyse every Python chunk of ``repo``; store new findings; return counts per rule."""
    repo = repo or conf.code_repo()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT path, start_line, content, content_hash FROM platform.code_chunks "
            "WHERE repo = %s AND language = 'python' ORDER BY path, chunk_index",
            [repo],
        )
        chunks = cursor.fetchall()
    rows = []
    for path, start_line, content, content_hash in chunks:
        for finding in analyze(content, start_line):
            key = f"{finding.rule}|{repo}|{path}|{finding.line - start_line}|{content_hash}"
            rows.append(
                (finding.analyzer, finding.category, finding.rule, finding.severity, path,
                 finding.line, finding.message, hashlib.sha256(key.encode()).hexdigest())
            )  # fmt: skip
    new = 0
    if rows:
        columns = [list(column) for column in zip(*rows, strict=True)]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO platform.analysis_results (analyzer, category, rule, severity, "
                "path, line, message, fingerprint) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
                "%s::text[], %s::int[], %s::text[], %s::text[]) "
                "ON CONFLICT (fingerprint) DO NOTHING",
                columns,
            )
            new = cursor.rowcount
    per_rule = Counter(row[2] for row in rows)
    logger.info("code analysed", extra={"repo": repo, "findings": len(rows), "new": new})
    return {"chunks": len(chunks), "findings": len(rows), "new_findings": new, **per_rule}


def snapshot_summary() -> dict[str, object]:
    """What the system holds right now (deterministic: no timestamps)."""
    # Every task module, imported as the worker's autodiscovery does, so the list is the same
    # whether a worker or a management shell takes the snapshot.
    importlib.import_module("tasks.tasks")
    tasks = sorted(name for name in current_app.tasks if not name.startswith("celery."))
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        for label, query in (
            ("code_chunks", "SELECT count(*) FROM platform.code_chunks"),
            ("templates", "SELECT count(*) FROM platform.templates"),
            ("knowledge_artifacts", "SELECT count(*) FROM platform.knowledge_artifacts"),
            ("analysis_results", "SELECT count(*) FROM platform.analysis_results"),
            ("pg_cron_jobs", "SELECT count(*) FROM cron.job"),
        ):
            cursor.execute(query)
            counts[label] = int(cursor.fetchone()[0])
    return {"celery_tasks": tasks, "counts": counts}


def sync(repo: str | None = None) -> dict[str, object]:
    """Analyse, then store a snapshot if anything differs from the latest one."""
    with transaction.atomic():
        analysis = analyze_repository(repo)
        # What was new this time is not state: leaving it out keeps a re-run's digest equal.
        totals = {key: value for key, value in analysis.items() if key != "new_findings"}
        summary = {**snapshot_summary(), "analysis": totals}
        digest = hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT digest FROM platform.registry_snapshots ORDER BY id DESC LIMIT 1"
            )
            latest = cursor.fetchone()
            stored = latest is None or latest[0] != digest
            if stored:
                cursor.execute(
                    "INSERT INTO platform.registry_snapshots (digest, summary) VALUES (%s, %s)",
                    [digest, json.dumps(summary, sort_keys=True)],
                )
    logger.info("registry synced", extra={"digest": digest, "stored": stored})
    return {"digest": digest, "stored": stored, "analysis": analysis}


@shared_task(name="tasks.registry_sync.sync_registry")
def sync_registry(repo: str | None = None) -> dict[str, object]:
    """The daily registry sync job."""
    return sync(repo)
