"""``FastListDumper``: psycopg's text array format, byte for byte, without a regex per quote."""

from __future__ import annotations

import pytest
from psycopg import adapt
from psycopg.types.array import ListDumper

from orchestrator.pg_arrays import FastListDumper


@pytest.mark.parametrize(
    "items",
    [
        ['{"a": "b"}', 'back\\slash "quoted"', "plain", "", "with,comma", "{braces}"],
        ["a", None, 'x"y'],
        [],
    ],
)
def test_fast_list_dumper__same_bytes_as_psycopg(items: list[str | None]) -> None:
    """The fast text array dumper writes exactly what psycopg's ListDumper writes."""
    context = adapt.Transformer()
    theirs = ListDumper(list, context).upgrade(items, adapt.PyFormat.TEXT)
    ours = FastListDumper(list, context).upgrade(items, adapt.PyFormat.TEXT)
    assert type(ours) is FastListDumper
    assert bytes(ours.dump(items)) == bytes(theirs.dump(items))
