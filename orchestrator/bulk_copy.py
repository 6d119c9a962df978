"""Insert many model rows with PostgreSQL's ``COPY``, where ``bulk_create`` spends its time in
Python building SQL.

An apply from empty writes one registry row and (for Celery) one periodic task per job: at
100,000 jobs Django 5.2's ``bulk_create`` compiled an ``INSERT ... SELECT * FROM UNNEST(...)``
per batch, turned every column into an array parameter and dumped it element by element, which
took most of the apply's database time. ``COPY ... FROM STDIN`` streams the same values, each
prepared by its model field exactly as ``bulk_create`` prepares it (``pre_save`` for
``auto_now`` fields, ``get_db_prep_save`` for JSON and dates), through psycopg's C copy path.

Primary keys come first from the table's own sequence (one ``nextval`` query per call), so each
object gets its ``pk`` as ``bulk_create`` would give it. Triggers fire as for an ``INSERT``:
``COPY`` runs row-level and statement-level insert triggers (django-celery-beat's due-time
trigger is statement-level). Model signals do not fire, as with ``bulk_create``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from psycopg import sql

M = TypeVar("M", bound=Model)

#: fields whose database value is the Python value itself when that is a str, int or bool
_PLAIN = frozenset(
    {
        "CharField",
        "TextField",
        "BooleanField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "PositiveBigIntegerField",
        "ForeignKey",
    }
)
_PLAIN_TYPES = (str, int, bool, type(None))
_PLAIN_TYPE_SET = frozenset(_PLAIN_TYPES)


def blank(model: type[M]) -> Callable[[], M]:
    """A maker of new, unsaved instances of ``model`` with every field at its default, as
    ``model()`` makes them, without running ``Model.__init__`` for each one.

    An apply from empty builds one registry row per job and one periodic task per Celery job:
    150,000 instances at 100,000 jobs, and ``__init__`` asks each of their fields for its
    default every time (2.2 million calls, a tenth of the apply's Python). Each instance here
    starts from one real ``model()``'s values, with a state of its own and a fresh value for
    every callable default (a ``default=list`` is never shared). A model that overrides
    ``__init__`` or has init signal receivers gets ``model`` itself.
    """
    if (
        model.__init__ is not Model.__init__
        or pre_init.has_listeners(model)
        or post_init.has_listeners(model)
    ):
        return model
    values = {k: v for k, v in model().__dict__.items() if k != "_state"}
    fresh = [
        (field.attname, field.get_default)
        for field in model._meta.concrete_fields
        if field.has_default() and callable(field.default)
    ]

    def make() -> M:
        obj: M = object.__new__(model)
        state = obj.__dict__
        state.update(values)
        for name, default in fresh:
            state[name] = default()
        state["_state"] = ModelState()
        return obj

    return make


_PLAIN_KIND, _DATETIME_KIND, _OTHER_KIND = "plain", "datetime", "other"


def _kind(field: Field[Any, Any]) -> str:
    """How a value of ``field`` may skip ``get_db_prep_save``: a 100,000-row apply writes
    600,000 datetimes, and the field's checks for each were a tenth of the apply's Python."""
    internal = field.get_internal_type()
    if internal in _PLAIN:
        return _PLAIN_KIND
    if internal == "DateTimeField":
        return _DATETIME_KIND
    return _OTHER_KIND


def copy_insert(model: type[Model], objects: Sequence[Model]) -> None:
    """Insert ``objects`` (new instances of ``model``) in one ``COPY``; sets each one's pk."""
    if not objects:
        return
    wrapper = connections[DEFAULT_DB_ALIAS]  # not the proxy: it is asked once per value
    meta = model._meta
    pk = meta.pk
    assert pk is not None  # every concrete model has one
    fields = [field for field in meta.concrete_fields if field is not pk]
    # Plain fields that save their attribute as it is (``Field.pre_save`` not overridden) are
    # read all at once by one ``attrgetter`` (in C): a Python call per value was the largest
    # cost of writing 100,000 rows. Their columns come first; the others go field by field.
    direct = [
        field
        for field in fields
        if field.get_internal_type() in _PLAIN and type(field).pre_save is Field.pre_save
    ]
    prepared = [field for field in fields if field not in direct]
    kinds = [_kind(field) for field in prepared]
    columns = [pk.column, *(field.column for field in (*direct, *prepared))]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(meta.db_table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    names = [field.attname for field in direct]
    read: Callable[[Model], tuple[Any, ...]]
    if len(names) > 1:
        read = attrgetter(*names)
    else:  # ``attrgetter`` of one name returns the value itself, and needs at least one
        read = lambda obj: tuple(getattr(obj, name) for name in names)  # noqa: E731

    def value(obj: Model, field: Field[Any, Any], kind: str) -> Any:
        raw = field.pre_save(obj, True)
        if kind == _PLAIN_KIND and isinstance(raw, _PLAIN_TYPES):
            return raw  # what get_db_prep_save returns for these, without its calls
        if kind == _DATETIME_KIND and (raw is None or (type(raw) is datetime and raw.tzinfo)):
            # get_prep_value returns an aware datetime as it is (a naive one is warned about
            # and made aware: left to it) and PostgreSQL's adapt_datetimefield_value too
            return raw
        return field.get_db_prep_save(raw, wrapper)

    def direct_values(obj: Model) -> tuple[Any, ...] | list[Any]:
        values = read(obj)
        if _PLAIN_TYPE_SET.issuperset(map(type, values)):
            return values
        return [value(obj, field, _PLAIN_KIND) for field in direct]  # e.g. a lazy string

    with wrapper.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(objects)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        with cursor.cursor.copy(statement) as copy:  # the psycopg cursor under Django's
            for obj, new_id in zip(objects, ids, strict=True):
                setattr(obj, pk.attname, new_id)
                copy.write_row(
                    [
                        new_id,
                        *direct_values(obj),
                        *[value(obj, f, k) for f, k in zip(prepared, kinds, strict=True)],
                    ]
                )
                obj._state.adding = False
                obj._state.db = wrapper.alias
