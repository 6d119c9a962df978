"""Configuration has one source: ``project/settings.py`` reads the environment, the README lists it.

The variables are collected from the code by parsing it (``ast``), not by running it, so a branch
that is not taken on this machine (an unset variable, a DEBUG-only path) still counts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "project" / "settings.py"
ENVIRONMENT = ROOT / "project" / "environment.py"
README = ROOT / "README.md"

#: project.environment's readers that take a prefix: every ``PREFIX<SUFFIX>`` variable is read.
#: Every other reader with arguments takes a variable's name first (``get``, ``flag``, ...).
PREFIX_READERS = {"integers_by_suffix", "strings_by_prefix"}
#: Modules that may touch ``os.environ`` outside project/, and why.
ENVIRONMENT_ALLOWED = {
    # Builds a client program's environment from an allow-list (PATH, LANG, ...): a child's
    # environment, not a setting.
    "orchestrator/engines/celery/libpq.py",
}


def _constant(node: ast.expr, where: str) -> str:
    message = f"{where}: the environment variable's name must be a string literal (to be listed)"
    assert isinstance(node, ast.Constant), message
    assert isinstance(node.value, str), message
    return node.value


def _os_environ_reads(tree: ast.AST, where: str, *, literal_only: bool = False) -> set[str]:
    """Names read with ``os.environ.get("X")``, ``os.getenv("X")`` or ``os.environ["X"]``.

    A name that is not a literal fails, unless ``literal_only`` (for project.environment's
    generic readers, whose names come from settings.py's calls)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        read: ast.expr | None = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if (owner, node.func.attr) in {("os.environ", "get"), ("os", "getenv")}:
                read = node.args[0]
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and ast.unparse(node.value) == "os.environ"
        ):
            read = node.slice
        if read is None or (literal_only and not isinstance(read, ast.Constant)):
            continue
        names.add(_constant(read, where))
    return names


def _environment_functions() -> dict[str, set[str]]:
    """project.environment's functions that read fixed variables themselves (``profile``)."""
    tree = ast.parse(ENVIRONMENT.read_text())
    return {
        node.name: reads
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and (reads := _os_environ_reads(node, ENVIRONMENT.name, literal_only=True))
    }


def settings_variables() -> set[str]:
    """Every environment variable project/settings.py reads, prefixes as ``PREFIX<KIND>``."""
    tree = ast.parse(SETTINGS.read_text())
    fixed = _environment_functions()
    names = _os_environ_reads(tree, SETTINGS.name)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "env"):
            continue
        where = f"{SETTINGS.name}:{node.lineno}"
        if node.func.attr in PREFIX_READERS:
            names.add(_constant(node.args[0], where) + "<KIND>")
        elif node.args:
            names.add(_constant(node.args[0], where))
        names |= fixed.get(node.func.attr, set())
    return names


def readme_table_variables() -> set[str]:
    """The variables in the first column of the README's configuration table."""
    text = README.read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n\n|", 1)[1].split("\n\n", 1)[0]
    names: set[str] = set()
    for row in ("|" + table).splitlines()[2:]:
        first = row.split("|")[1]
        names |= set(re.findall(r"`([A-Z][A-Z0-9_]*(?:<KIND>)?)`", first))
    return names


def _imports_environment(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.module == "project.environment" or (
            node.module == "project" and any(alias.name == "environment" for alias in node.names)
        )
    return any(alias.name == "project.environment" for alias in node.names)


def test_configuration__settings_read_what_the_readme_lists() -> None:
    """The README's configuration table lists exactly the variables settings.py reads: none
    missing, none that nothing reads."""
    read = settings_variables()
    listed = readme_table_variables()
    assert read - listed == set(), "read by project/settings.py but not in the README's table"
    assert listed - read == set(), "in the README's table but not read by project/settings.py"


def test_configuration__the_collector_sees_every_kind_of_read() -> None:
    """The collector finds names read through env.get/flag/listing/integer, prefixed readers and
    project.environment's own reads (the profile), so the comparison above cannot pass by
    collecting nothing."""
    read = settings_variables()
    assert {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "SECURE_HSTS_SECONDS"} <= read
    assert {"ORCHESTRATOR_BACKUP_KEEP_<KIND>", "ORCHESTRATOR_PROFILE"} <= read


def test_configuration__no_module_outside_project_reads_the_environment() -> None:
    """orchestrator/, tasks/ and sql_jobs/ read settings, never the environment or
    project.environment, so settings.py stays the one source (child-process environments
    built from an allow-list excepted)."""
    offenders: list[str] = []
    for package in ("orchestrator", "tasks", "sql_jobs"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text())
            if relative not in ENVIRONMENT_ALLOWED and _os_environ_reads(tree, relative):
                offenders.append(f"{relative}: reads os.environ")
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom | ast.Import) and _imports_environment(node):
                    offenders.append(f"{relative}: imports project.environment")
    assert offenders == []
