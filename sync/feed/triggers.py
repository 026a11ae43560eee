"""Database triggers that write the change feed in the transaction that changes master data.

Every path that changes what a store may see (the admin, the HQ API, bulk upserts with COPY or
``INSERT … ON CONFLICT``, data migrations, management commands, raw SQL) goes through the
database, so the feed is written there and nothing can bypass it. The same description below
yields PostgreSQL statement-level triggers over transition tables (one set-based upsert per
statement, so a 10,000-row bulk write costs one feed statement) and SQLite row-level triggers.

Each *source* is a table and a ``SELECT`` that maps its changed rows (``{rows}``) to feed
tuples ``(entity, scope, entity_key, obj_id)``:

- an **owner** source's insert upserts its tuples, its delete leaves tombstones, and its update
  upserts the new tuples and tombstones old ones that no longer exist (a key or scope change);
- a **touch** source (barcodes; a currency's decimals) only marks what it is part of changed,
  before and after.

Keys other entities' keys are built from (``product.sku``, ``tax_rate.code``) are immutable in
the database too, so no derived key can go stale. A store that changes price list receives,
in its own scope, a tombstone for every key the old list's feed holds (deleted ones too) and the
current prices of the new one, because its cursor has already passed the new list's history
and it no longer reads the old list's tombstones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.db.backends.base.base import BaseDatabaseWrapper

FEED = "sync_feedchange"
PG_SEQUENCE = "sync_feed_version"


@dataclass(frozen=True)
class Source:
    table: str
    columns: tuple[str, ...]
    select: str
    mode: Literal["owner", "touch"] = "owner"


SOURCES = (
    Source(
        "inventory_product",
        ("id", "sku"),
        "SELECT 'product' AS entity, 'global' AS scope, r.sku AS entity_key, r.id AS obj_id "
        "FROM {rows} r",
    ),
    Source(
        "inventory_barcode",
        ("id", "product_id"),
        "SELECT 'product' AS entity, 'global' AS scope, p.sku AS entity_key, p.id AS obj_id "
        "FROM {rows} r JOIN inventory_product p ON p.id = r.product_id",
        mode="touch",
    ),
    Source(
        "inventory_taxrate",
        ("id", "code"),
        "SELECT 'tax_rate' AS entity, 'global' AS scope, r.code AS entity_key, r.id AS obj_id "
        "FROM {rows} r",
    ),
    Source(
        "inventory_price",
        ("id", "price_list_id", "product_id", "valid_from"),
        "SELECT 'price' AS entity, 'pl:' || r.price_list_id AS scope, "
        "p.sku || '@' || {valid_from} AS entity_key, r.id AS obj_id "
        "FROM {rows} r JOIN inventory_product p ON p.id = r.product_id",
    ),
    Source(
        # Reference data, changed only by a migration (ISO 4217 revises a currency's decimals
        # now and then): what is sent with its decimals is sent again.
        "inventory_currency",
        ("code", "minor_units"),
        "SELECT 'store_config' AS entity, 'store:' || s.id AS scope, s.code AS entity_key, "
        "s.id AS obj_id FROM {rows} r JOIN stores_store s ON s.currency_id = r.code "
        "UNION ALL "
        "SELECT 'price' AS entity, 'pl:' || r.price_list_id AS scope, "
        "p.sku || '@' || {valid_from} AS entity_key, r.id AS obj_id "
        "FROM {rows} c JOIN inventory_pricelist l ON l.currency_id = c.code "
        "JOIN inventory_price r ON r.price_list_id = l.id "
        "JOIN inventory_product p ON p.id = r.product_id",
        mode="touch",
    ),
    Source(
        "stores_store",
        ("id", "code", "price_list_id"),
        "SELECT 'store_config' AS entity, 'store:' || r.id AS scope, r.code AS entity_key, "
        "r.id AS obj_id FROM {rows} r",
    ),
    Source(
        "stores_register",
        ("id", "store_id", "code"),
        "SELECT 'register' AS entity, 'store:' || r.store_id AS scope, r.code AS entity_key, "
        "r.id AS obj_id FROM {rows} r",
    ),
    Source(
        "stores_cashier",
        ("id", "code"),
        "SELECT 'cashier' AS entity, 'store:' || m.store_id AS scope, r.code AS entity_key, "
        "r.id AS obj_id FROM {rows} r JOIN stores_cashierstore m ON m.cashier_id = r.id",
    ),
    Source(
        "stores_cashierstore",
        ("id", "cashier_id", "store_id"),
        "SELECT 'cashier' AS entity, 'store:' || r.store_id AS scope, c.code AS entity_key, "
        "r.cashier_id AS obj_id FROM {rows} r JOIN stores_cashier c ON c.id = r.cashier_id",
    ),
)

# Columns whose value other feed keys or payloads are built from.
IMMUTABLE = (
    ("inventory_product", "sku"),
    ("inventory_taxrate", "code"),
    ("inventory_pricelist", "code"),
)

# What a store receives in its own scope when it changes price list ({old}/{new} rows): a
# tombstone for every key the old list's feed holds, deleted ones included (a node part-way
# through a delta may still hold a price whose tombstone in the old list is ahead of its cursor,
# and it no longer reads that list), then the new list's current prices.
_SWITCH = "FROM {new} n JOIN {old} o ON o.id = n.id AND o.price_list_id <> n.price_list_id "
_SWITCH_GONE = (
    "SELECT 'price' AS entity, 'store:' || n.id AS scope, f.entity_key AS entity_key, "
    f"NULL AS obj_id {_SWITCH}"
    f"JOIN {FEED} f ON f.entity = 'price' AND f.scope = 'pl:' || o.price_list_id"
)
_SWITCH_PRICES = (
    "SELECT 'price' AS entity, 'store:' || n.id AS scope, "
    f"p.sku || '@' || {{valid_from}} AS entity_key, r.id AS obj_id {_SWITCH}"
    "JOIN inventory_price r ON r.price_list_id = n.price_list_id "
    "JOIN inventory_product p ON p.id = r.product_id"
)


# --- PostgreSQL ---------------------------------------------------------------------------------

_PG_VALID_FROM = "to_char(r.valid_from, 'YYYY-MM-DD')"


def _pg_write(select: str, op: str) -> str:
    obj_id = "s.obj_id" if op == "upsert" else "NULL::bigint"
    return (
        f"INSERT INTO {FEED} (entity, scope, entity_key, obj_id, op, txid, version) "
        f"SELECT DISTINCT ON (s.entity, s.scope, s.entity_key) s.entity, s.scope, s.entity_key, "
        f"{obj_id}, '{op}', pg_current_xact_id()::text::bigint, nextval('{PG_SEQUENCE}') "
        f"FROM ({select}) s "
        # The new version is drawn after the row lock is held, so a key's version only grows.
        f"ON CONFLICT (entity, scope, entity_key) DO UPDATE SET obj_id = EXCLUDED.obj_id, "
        f"op = EXCLUDED.op, txid = EXCLUDED.txid, version = nextval('{PG_SEQUENCE}');"
    )


def _pg_gone(old: str, new: str) -> str:
    """Tuples of ``old`` that ``new`` no longer has."""
    return (
        f"SELECT o.* FROM ({old}) o WHERE NOT EXISTS (SELECT 1 FROM ({new}) n "
        "WHERE n.entity = o.entity AND n.scope = o.scope AND n.entity_key = o.entity_key)"
    )


def _pg_bodies(source: Source) -> dict[str, list[str]]:
    def select(rows: str) -> str:
        return source.select.format(rows=rows, valid_from=_PG_VALID_FROM)

    new, old = select("new_rows"), select("old_rows")
    if source.mode == "touch":
        return {
            "INSERT": [_pg_write(new, "upsert")],
            "UPDATE": [_pg_write(f"{old} UNION {new}", "upsert")],
            "DELETE": [_pg_write(old, "upsert")],
        }
    update = [_pg_write(_pg_gone(old, new), "delete"), _pg_write(new, "upsert")]
    if source.table == "stores_store":
        switch = {"new": "new_rows", "old": "old_rows", "valid_from": _PG_VALID_FROM}
        update += [
            # Copy the new list's prices only once no price write is in flight: a price that a
            # concurrent transaction commits in the new list would otherwise be in neither the
            # copy (not yet committed) nor the node's view (its row is older than the cursor).
            # Each statement below takes a fresh snapshot (READ COMMITTED) after the lock.
            "IF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id "
            "AND o.price_list_id <> n.price_list_id) THEN "
            "LOCK TABLE inventory_price IN SHARE MODE; END IF;",
            _pg_write(_SWITCH_GONE.format(**switch), "delete"),
            _pg_write(_SWITCH_PRICES.format(**switch), "upsert"),
        ]
    locks = {"INSERT": [], "UPDATE": [], "DELETE": []}
    if source.table == "stores_cashierstore":
        # A membership change waits for an edit of its cashier in flight (and an edit waits for
        # it), so the edit's rows, built from the memberships it sees, include this store.
        locks = {
            event: [
                f"PERFORM 1 FROM stores_cashier WHERE id IN (SELECT cashier_id FROM {rows}) "
                "ORDER BY id FOR UPDATE;"
                for rows in tables
            ]
            for event, tables in (
                ("INSERT", ["new_rows"]),
                ("UPDATE", ["old_rows", "new_rows"]),
                ("DELETE", ["old_rows"]),
            )
        }
    return {
        "INSERT": [*locks["INSERT"], _pg_write(new, "upsert")],
        "UPDATE": [*locks["UPDATE"], *update],
        "DELETE": [*locks["DELETE"], _pg_write(old, "delete")],
    }


def postgresql_install() -> list[str]:
    statements = [f"CREATE SEQUENCE IF NOT EXISTS {PG_SEQUENCE}"]
    for source in SOURCES:
        for event, body in _pg_bodies(source).items():
            name = f"sync_feed_{source.table}_{event.lower()}"
            transition = {
                "INSERT": "NEW TABLE AS new_rows",
                "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                "DELETE": "OLD TABLE AS old_rows",
            }[event]
            statements.append(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {' '.join(body)} RETURN NULL; END $$"
            )
            statements.append(
                f"CREATE TRIGGER {name} AFTER {event} ON {source.table} "
                f"REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
    for table, column in IMMUTABLE:
        name = f"sync_feed_{table}_{column}_immutable"
        statements.append(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION '{table}.{column} cannot be changed once created' "
            "USING ERRCODE = 'integrity_constraint_violation'; END $$"
        )
        statements.append(
            f"CREATE TRIGGER {name} BEFORE UPDATE OF {column} ON {table} FOR EACH ROW "
            f"WHEN (OLD.{column} IS DISTINCT FROM NEW.{column}) EXECUTE FUNCTION {name}()"
        )
    return statements


def postgresql_uninstall(*, keep_sequence: bool = False) -> list[str]:
    statements = []
    for source in SOURCES:
        for event in ("insert", "update", "delete"):
            name = f"sync_feed_{source.table}_{event}"
            statements.append(f"DROP TRIGGER IF EXISTS {name} ON {source.table}")
            statements.append(f"DROP FUNCTION IF EXISTS {name}()")
    for table, column in IMMUTABLE:
        name = f"sync_feed_{table}_{column}_immutable"
        statements.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        statements.append(f"DROP FUNCTION IF EXISTS {name}()")
    if not keep_sequence:
        statements.append(f"DROP SEQUENCE IF EXISTS {PG_SEQUENCE}")
    return statements


# --- SQLite -------------------------------------------------------------------------------------

# The clock row is re-created if missing (``manage.py flush`` empties every table), from the
# highest version the feed holds, so versions never go back.
_SQLITE_BUMP = (
    "INSERT INTO sync_feedclock (id, value) "
    "VALUES (1, (SELECT COALESCE(MAX(version), 0) + 1 FROM sync_feedchange)) "
    "ON CONFLICT (id) DO UPDATE SET value = value + 1;"
)


def _sqlite_write(select: str, op: str) -> str:
    obj_id = "s.obj_id" if op == "upsert" else "NULL"
    return (
        f"INSERT INTO {FEED} (entity, scope, entity_key, obj_id, op, txid, version) "
        f"SELECT s.entity, s.scope, s.entity_key, {obj_id}, '{op}', 0, "
        f"(SELECT value FROM sync_feedclock WHERE id = 1) FROM ({select}) s WHERE true "
        "ON CONFLICT (entity, scope, entity_key) DO UPDATE SET obj_id = excluded.obj_id, "
        "op = excluded.op, txid = excluded.txid, version = excluded.version;"
    )


def _sqlite_row(source: Source, alias: str) -> str:
    return "(SELECT " + ", ".join(f"{alias}.{c} AS {c}" for c in source.columns) + ")"


def sqlite_install() -> list[str]:
    statements = ["INSERT OR IGNORE INTO sync_feedclock (id, value) VALUES (1, 0)"]
    for source in SOURCES:

        def select(alias: str, source: Source = source) -> str:
            return source.select.format(rows=_sqlite_row(source, alias), valid_from="r.valid_from")

        new, old = select("NEW"), select("OLD")
        if source.mode == "touch":
            bodies = {
                "INSERT": [_sqlite_write(new, "upsert")],
                "UPDATE": [_sqlite_write(f"{old} UNION {new}", "upsert")],
                "DELETE": [_sqlite_write(old, "upsert")],
            }
        else:
            gone = (
                f"SELECT o.* FROM ({old}) o WHERE NOT EXISTS (SELECT 1 FROM ({new}) n "
                "WHERE n.entity = o.entity AND n.scope = o.scope AND n.entity_key = o.entity_key)"
            )
            bodies = {
                "INSERT": [_sqlite_write(new, "upsert")],
                "UPDATE": [_sqlite_write(gone, "delete"), _sqlite_write(new, "upsert")],
                "DELETE": [_sqlite_write(old, "delete")],
            }
            if source.table == "stores_store":
                switch = {
                    "new": _sqlite_row(source, "NEW"),
                    "old": _sqlite_row(source, "OLD"),
                    "valid_from": "r.valid_from",
                }
                bodies["UPDATE"] += [
                    _sqlite_write(_SWITCH_GONE.format(**switch), "delete"),
                    _sqlite_write(_SWITCH_PRICES.format(**switch), "upsert"),
                ]
        for event, body in bodies.items():
            name = f"sync_feed_{source.table}_{event.lower()}"
            statements.append(
                f"CREATE TRIGGER {name} AFTER {event} ON {source.table} FOR EACH ROW BEGIN "
                f"{_SQLITE_BUMP} {' '.join(body)} END"
            )
    for table, column in IMMUTABLE:
        statements.append(
            f"CREATE TRIGGER sync_feed_{table}_{column}_immutable BEFORE UPDATE OF {column} "
            f"ON {table} FOR EACH ROW WHEN OLD.{column} IS NOT NEW.{column} BEGIN "
            f"SELECT RAISE(ABORT, '{table}.{column} cannot be changed once created'); END"
        )
    return statements


def sqlite_uninstall() -> list[str]:
    statements = []
    for source in SOURCES:
        for event in ("insert", "update", "delete"):
            statements.append(f"DROP TRIGGER IF EXISTS sync_feed_{source.table}_{event}")
    for table, column in IMMUTABLE:
        statements.append(f"DROP TRIGGER IF EXISTS sync_feed_{table}_{column}_immutable")
    return statements


def install(connection: BaseDatabaseWrapper) -> None:
    statements = postgresql_install() if connection.vendor == "postgresql" else sqlite_install()
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    statements = postgresql_uninstall() if connection.vendor == "postgresql" else sqlite_uninstall()
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def reinstall(connection: BaseDatabaseWrapper) -> None:
    """Replace the triggers with the current description; the feed and its versions stay."""
    if connection.vendor == "postgresql":
        statements = postgresql_uninstall(keep_sequence=True) + postgresql_install()
    else:
        statements = sqlite_uninstall() + sqlite_install()
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def backfill(connection: BaseDatabaseWrapper) -> None:
    """Give every existing entity its feed row (when the feed is installed on a live database)."""
    pg = connection.vendor == "postgresql"
    valid_from = _PG_VALID_FROM if pg else "r.valid_from"
    with connection.cursor() as cursor:
        for source in SOURCES:
            if source.mode != "owner":
                continue
            select = source.select.format(rows=source.table, valid_from=valid_from)
            if pg:
                cursor.execute(_pg_write(select, "upsert"))
            else:
                cursor.execute(_SQLITE_BUMP)
                cursor.execute(_sqlite_write(select, "upsert"))
