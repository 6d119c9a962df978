"""The pg_cron wing's SQL, kept as data files beside this module and read once."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def query(name: str) -> str:
    """The text of ``<name>.sql``; values always travel separately, as parameters."""
    return resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
