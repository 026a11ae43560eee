"""Set-based inserts for the ingestion path: one statement per table per batch.

On PostgreSQL rows go in as ``INSERT … SELECT FROM unnest(%s::type[], …)`` — one round trip,
one plan, parameters as arrays — which is several times faster than the ORM's ``bulk_create``
(see ``shared/docs/performance-notes.md``). On SQLite, the embedded default, the same rows go
through ``executemany``. Column types are declared once per call so arrays are typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

_SQLITE_ADAPT = {
    # Django's own storage formats on SQLite, so ORM reads and comparisons agree.
    "uuid": lambda v: v.hex if hasattr(v, "hex") else str(v).replace("-", ""),
    "timestamptz": lambda v: connection.ops.adapt_datetimefield_value(v),
    "date": lambda v: v.isoformat(),
    "numeric": lambda v: str(v),
    "jsonb": lambda v: v,
    "bytea": lambda v: bytes(v),
}


def _sqlite_row(row: Sequence[Any], columns: Sequence[tuple[str, str]]) -> tuple[Any, ...]:
    out = []
    for value, (_, kind) in zip(row, columns, strict=True):
        adapt = _SQLITE_ADAPT.get(kind)
        out.append(adapt(value) if adapt is not None and value is not None else value)
    return tuple(out)


def _pg_sql(table: str, columns: Sequence[tuple[str, str]], suffix: str) -> str:
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {suffix}"


def insert_rows(
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: str = "",
    returning: str = "",
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``.

    ``columns`` pairs each column name with its PostgreSQL type (``uuid``, ``text``,
    ``numeric``, ``date``, ``timestamptz``, ``bigint``, ``integer``, ``boolean``, ``jsonb``).
    ``on_conflict`` is an ``ON CONFLICT …`` clause, ``returning`` a column list; rows
    returned (PostgreSQL and SQLite ≥ 3.35 both support RETURNING) come back as tuples.
    """
    if not rows:
        return []
    parts = (on_conflict, f"RETURNING {returning}" if returning else "")
    suffix = " ".join(part for part in parts if part)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = [list(values) for values in zip(*rows, strict=True)]
            cursor.execute(_pg_sql(table, columns, suffix), arrays)
            return list(cursor.fetchall()) if returning else []
        rows = [_sqlite_row(row, columns) for row in rows]
        names = ", ".join(name for name, _ in columns)
        marks = ", ".join("%s" for _ in columns)
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) {suffix}"
        if not returning:
            cursor.executemany(sql, [tuple(row) for row in rows])
            return []
        found: list[tuple[Any, ...]] = []
        for row in rows:
            cursor.execute(sql, tuple(row))
            found.extend(cursor.fetchall())
        return found
