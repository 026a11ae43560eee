"""Set-based inserts for the ingestion path: one statement per table per batch.

On PostgreSQL rows go in as ``INSERT … SELECT FROM unnest(%s::type[], …)`` — one round trip,
one plan, parameters as arrays — which is several times faster than the ORM's ``bulk_create``
(see ``shared/docs/performance-notes.md``). On SQLite, the embedded default, the same rows go
through ``executemany``. Column types are declared once per call so arrays are typed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

_SQLITE_ADAPT = {
    # Django's own storage formats on SQLite, so ORM reads and comparisons agree.
    "uuid": lambda v: v.hex if hasattr(v, "hex") else str(v).replace("-", ""),
    # ISO text is accepted for these too (see insert_rows' ``typed``).
    "timestamptz": lambda v: connection.ops.adapt_datetimefield_value(
        dt.datetime.fromisoformat(v) if isinstance(v, str) else v
    ),
    "date": lambda v: v if isinstance(v, str) else v.isoformat(),
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


# Text goes over the wire as bytea[] and is decoded by the server: measured on this machine with
# text-format parameters, a 500-element text[] cost ~55 ms to bind and the same bytes as bytea[]
# ~10 ms; with binary parameters (%b, below) the gap is smaller but still in bytea's favour.
_AS_BYTES = {"text": "convert_from({}, 'UTF8')", "jsonb": "convert_from({}, 'UTF8')::jsonb"}


def _pg_sql(table: str, columns: Sequence[tuple[str, str]], suffix: str) -> str:
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(
        # %b: binary parameters; psycopg's default "%s" dumps lists as text array literals.
        f"%b::{'bytea' if kind in _AS_BYTES else kind}[]"
        for _, kind in columns
    )
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    select = ", ".join(
        _AS_BYTES[kind].format(f"c{i}") if kind in _AS_BYTES else f"c{i}"
        for i, (_, kind) in enumerate(columns)
    )
    return (
        f"INSERT INTO {table} ({names}) SELECT {select} FROM unnest({arrays}) AS u({aliases}) "
        f"{suffix}"
    )


def _pg_array(values: Sequence[Any], kind: str) -> list[Any]:
    if kind in _AS_BYTES:
        return [v.encode() if isinstance(v, str) else v for v in values]
    return list(values)


# Column types a typed insert may be given as text (canonical UUIDs, ISO dates and instants,
# decimal strings).
_AS_TEXT_OK = frozenset({"uuid", "date", "timestamptz", "numeric"})


def _copy_type(rows: Sequence[Sequence[Any]], index: int, kind: str) -> str:
    """The type a typed COPY dumps column ``index`` as: a uuid, date, timestamptz or numeric
    column whose values are text goes as text (the server parses it the same way)."""
    if kind not in _AS_TEXT_OK:
        return kind
    for row in rows:
        value = row[index]
        if value is not None:
            return "text" if isinstance(value, str) else kind
    return kind


def insert_rows(
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: str = "",
    returning: str = "",
    typed: bool = False,
    pg_returning_filter: str = "",
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``.

    ``columns`` pairs each column name with its PostgreSQL type (``uuid``, ``text``,
    ``numeric``, ``date``, ``timestamptz``, ``bigint``, ``integer``, ``boolean``, ``jsonb``).
    ``on_conflict`` is an ``ON CONFLICT …`` clause, ``returning`` a column list; rows
    returned (PostgreSQL and SQLite ≥ 3.35 both support RETURNING) come back as tuples.

    ``typed``: the caller guarantees every value already has its column's Python type
    (``uuid.UUID`` for uuid, ``str`` for text, ``Decimal`` or ``int`` for numeric, no jsonb),
    so a COPY dumps each column with one dumper chosen once instead of looking one up per
    value: about 30 % less CPU for the rows of a 500-sale batch. A value of another type
    fails the statement (and the transaction). A uuid, date, timestamptz or numeric column
    may hold text instead (``str(uuid)``, ``isoformat()``, a decimal string such as
    ``"-12.50"``), if its first value that is not None is text. Worth it for a value
    repeated over many rows: psycopg's UUID dumper is a Python call per value, and a date or
    aware datetime costs an ``isoformat`` per value (about 3,000 and 6,500 instructions),
    while a sale's id and day are in each of its lines, tenders and moves and ``now`` is in
    most rows. And for amounts that arrived as decimal strings: a Decimal costs a ``str``
    per value to dump.

    ``pg_returning_filter``: on PostgreSQL, a condition on the returned columns; only rows
    meeting it come back (``WITH … RETURNING`` filtered on the server). SQLite returns every
    row, so the caller still applies the same condition.
    """
    if not rows:
        return []
    parts = (on_conflict, f"RETURNING {returning}" if returning else "")
    suffix = " ".join(part for part in parts if part)
    if connection.vendor == "postgresql" and not on_conflict and not returning:
        # Plain appends go in with COPY: the fastest path PostgreSQL has, inside the same
        # transaction as everything else the caller does.
        connection.ensure_connection()
        import psycopg

        names = ", ".join(name for name, _ in columns)
        with (
            connection.wrap_database_errors,  # psycopg errors as Django's, as the ORM raises
            psycopg.Cursor(connection.connection) as raw,
            raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            if typed:
                copy.set_types([_copy_type(rows, i, kind) for i, (_, kind) in enumerate(columns)])
            for row in rows:
                copy.write_row(row)
        return []
    if connection.vendor == "postgresql":
        # Straight to psycopg with server-side binding and binary parameters: arrays of
        # thousands of values are sent as-is instead of being quoted into the SQL text. Same
        # connection, so the same transaction as the ORM's statements around it.
        connection.ensure_connection()
        arrays = [
            _pg_array(values, kind)
            for values, (_, kind) in zip(zip(*rows, strict=True), columns, strict=True)
        ]
        import psycopg

        sql = _pg_sql(table, columns, suffix)
        if returning and pg_returning_filter:
            sql = f"WITH written AS ({sql}) SELECT * FROM written WHERE {pg_returning_filter}"
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as raw:
            raw.execute(sql, arrays, binary=True)
            return list(raw.fetchall()) if returning else []
    with connection.cursor() as cursor:
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


def array_literal(values: Iterable[Any], *, quote: bool = False) -> str:
    """A PostgreSQL array literal of ``values``, for a parameter cast to an array type
    (``= ANY(%b::uuid[])``).

    Cheaper than an array parameter for hundreds of keys: psycopg dumps a list with a
    Python call per element (about 1 µs), a join is one C call. ``quote=False`` is for
    values whose text needs no quoting (integers, uuids, ISO dates); ``quote=True`` quotes
    each element, for any text.
    """
    if quote:
        return (
            "{"
            + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
            + "}"
        )
    return "{" + ",".join([str(v) for v in values]) + "}"


def select_rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run a PostgreSQL query with binary parameters (``%b``; arrays for ``= ANY(%b)``).

    For the ingestion path's lookups of hundreds of keys: one round trip, no SQL text built
    from the keys. PostgreSQL only; callers keep an ORM path for SQLite.
    """
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as raw:
        raw.execute(sql, list(params), binary=True)
        return list(raw.fetchall())
