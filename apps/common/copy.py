"""Appending many rows at once with PostgreSQL's COPY.

Audit entries and delivery attempts are written for every send and never read back in
the same transaction. `bulk_create` builds a model instance per row and prepares every
value through the field API (about 100 µs a row in profiles of the delivery worker and
of `/bulk/`); psycopg formats COPY rows in C. Other databases (the SQLite demo) get
`bulk_create`. Hand-written: Django has no COPY support, and django-postgres-copy loads
CSV files rather than rows already in memory.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connections, models, router


def insert_rows(model, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (field name -> plain Python value, the same names in the same order
    in every row; foreign keys by their `_id` names) into `model`'s table, inside the
    current transaction."""
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**row) for row in rows])
        return
    meta = model._meta
    fields = [meta.get_field(name) for name in rows[0]]
    # Django fills defaults in Python, not in the table: do the same for the columns
    # the caller left out, so both paths store the same row.
    defaulted = [
        f for f in meta.concrete_fields if f not in fields and not f.primary_key and f.has_default()
    ]
    fields += defaulted
    json_columns = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY {quote(meta.db_table)} ({names}) FROM STDIN"  # names from model metadata
        ) as copy,
    ):
        for row in rows:
            row = [*row.values(), *(f.get_default() for f in defaulted)]
            for i in json_columns:
                row[i] = None if row[i] is None else json.dumps(row[i])  # as Django does
            copy.write_row(row)


def create_all(model, objs: list) -> list:
    """`bulk_create(objs)` for tables whose rows are written by the thousand: on
    PostgreSQL the ids are taken from the table's sequence first, then the rows go in
    with COPY (Django 5.2's INSERT … UNNEST dumps every array element in Python, the
    largest single cost of `/bulk/` in profiles). Sets each object's pk, as
    bulk_create does."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql" or not objs:
        return model.objects.bulk_create(objs)
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        ids = [row[0] for row in cursor.fetchall()]
    fields = list(meta.concrete_fields)
    for obj, pk in zip(objs, ids, strict=True):
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
        obj.pk = pk
    insert_rows(model, [{f.attname: f.pre_save(obj, True) for f in fields} for obj in objs])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs
