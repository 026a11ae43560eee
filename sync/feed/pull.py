"""``GET /api/v1/sync/pull``: the master-data changes one store may see, oldest first.

The feed (:class:`sync.models.FeedChange`) holds one row per entity and scope, moved to the
transaction of its latest change. A pull reads, inside one read-only snapshot, the rows of the
store's scopes (``global``, its price list, ``store:<id>``) that belong to the cursor's delta,
then the current data of those entities from the same snapshot, so ``version`` and ``data``
always agree.

Which rows belong to a delta is decided by transaction visibility, not by ids: on PostgreSQL
a row is in the delta ``(after, upto]`` when its transaction is visible in snapshot ``upto``
and was not in snapshot ``after``. A transaction still open when a page is served is not
visible in that page's snapshot, so its changes land in a later delta, whatever their ids.
SQLite serialises writers, so there the feed version alone orders commits.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from inventory.models import TaxRate
from stores.models import Cashier, NodeKey, Register, Store
from sync.feed.cursor import Cursor
from sync.models import NodeSyncState

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000

_COLUMNS = "id, entity, scope, entity_key, obj_id, op, txid, version"


@dataclass(frozen=True)
class FeedRow:
    id: int
    entity: str
    scope: str
    entity_key: str
    obj_id: int | None
    op: str
    txid: int
    version: int


@dataclass(frozen=True)
class PullPage:
    changes: list[dict[str, Any]]
    cursor: str
    has_more: bool


@dataclass(frozen=True)
class StoreView:
    """What decides a store's part of the feed, as of the page's snapshot."""

    store_id: int
    price_list_id: int

    @property
    def scopes(self) -> list[str]:
        return ["global", f"pl:{self.price_list_id}", f"store:{self.store_id}"]


def changes_pull(*, store_id: int, cursor: str | None, limit: int = DEFAULT_LIMIT) -> PullPage:
    """One page of the store's feed after ``cursor`` (None: from nothing, the current state)."""
    position = Cursor.decode(cursor, store_id=store_id) if cursor else Cursor(store_id=store_id)
    limit = max(1, min(limit, MAX_LIMIT))
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as db:
                # A read-only snapshot for the whole page: the store, the feed rows and the
                # entities' data below are read at one instant.
                db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        # The store's price list as of this snapshot (a switch changes which scopes it reads).
        upto, price_list_id = _snapshot(position, store_id)
        view = StoreView(store_id, price_list_id)
        if connection.vendor == "postgresql":
            rows = _rows_postgresql(position, view, upto, limit + 1)
        else:
            rows = _rows_sqlite(position, view, upto, limit + 1)
        has_more = len(rows) > limit
        rows = rows[:limit]
        changes = _materialise(rows, view, initial=position.initial)
        # The last page of a delta cut at an earlier page's snapshot: if more has been
        # committed since, say so, so that has_more=false always means "you hold HQ's state".
        newer = not has_more and position.upto is not None and _newer_exists(view, upto)
    if has_more:
        last = rows[-1]
        next_cursor = Cursor(
            store_id=store_id,
            after=position.after,
            upto=upto,
            position=(last.txid, last.version, last.id),
            initial=position.initial,
        )
    elif rows or position.upto is not None or position.initial:
        # The delta is done: the next pull starts where this snapshot ends.
        next_cursor = Cursor(store_id=store_id, after=upto, initial=False)
        has_more = newer
    else:
        # Nothing new: the same cursor again, so an idle node's answer (and its ETag) is stable.
        next_cursor = position
    return PullPage(changes=changes, cursor=next_cursor.encode(), has_more=has_more)


def _snapshot(position: Cursor, store_id: int) -> tuple[str, int]:
    """The end of the delta being served (the current snapshot, or the cursor's) and the
    store's price list, read in the page's snapshot."""
    with connection.cursor() as db:
        if connection.vendor == "postgresql":
            current = "pg_current_snapshot()::text"
        else:
            current = "(SELECT value FROM sync_feedclock WHERE id = 1)"
        db.execute(f"SELECT {current}, price_list_id FROM stores_store WHERE id = %s", [store_id])
        found = db.fetchone()
    if found is None:
        raise Store.DoesNotExist(f"store {store_id} is gone")
    snapshot, price_list_id = found
    if position.upto is not None:
        return position.upto, price_list_id
    return str(snapshot if snapshot is not None else 0), price_list_id


def _rows_postgresql(position: Cursor, view: StoreView, upto: str, limit: int) -> list[FeedRow]:
    conditions = [
        "scope = %(scope)s",
        "txid < pg_snapshot_xmax(%(upto)s::pg_snapshot)::text::bigint",
        "pg_visible_in_snapshot(txid::text::xid8, %(upto)s::pg_snapshot)",
    ]
    params: dict[str, Any] = {"upto": upto, "limit": limit}
    if position.after is not None:
        conditions += [
            "txid >= pg_snapshot_xmin(%(after)s::pg_snapshot)::text::bigint",
            "NOT pg_visible_in_snapshot(txid::text::xid8, %(after)s::pg_snapshot)",
        ]
        params["after"] = position.after
    if position.position is not None:
        conditions.append("(txid, version, id) > (%(p_txid)s, %(p_version)s, %(p_id)s)")
        params.update(zip(("p_txid", "p_version", "p_id"), position.position, strict=True))
    if position.initial:
        conditions.append("op = 'upsert'")
    return _union(conditions, params, view, "txid, version, id")


def _rows_sqlite(position: Cursor, view: StoreView, upto: str, limit: int) -> list[FeedRow]:
    conditions = ["scope = %(scope)s", "version <= %(upto)s"]
    params: dict[str, Any] = {"upto": int(upto), "limit": limit}
    if position.after is not None:
        conditions.append("version > %(after)s")
        params["after"] = int(position.after)
    if position.position is not None:
        conditions.append("(version, id) > (%(p_version)s, %(p_id)s)")
        params.update(p_version=position.position[1], p_id=position.position[2])
    if position.initial:
        conditions.append("op = 'upsert'")
    return _union(conditions, params, view, "version, id")


def _newer_exists(view: StoreView, upto: str) -> bool:
    """Whether the store's scopes hold a change committed after snapshot ``upto``."""
    scopes = view.scopes
    with connection.cursor() as db:
        if connection.vendor == "postgresql":
            db.execute(
                "SELECT EXISTS (SELECT 1 FROM sync_feedchange WHERE scope = ANY(%s) "
                "AND txid >= pg_snapshot_xmin(%s::pg_snapshot)::text::bigint "
                "AND NOT pg_visible_in_snapshot(txid::text::xid8, %s::pg_snapshot))",
                [scopes, upto, upto],
            )
        else:
            db.execute(
                "SELECT EXISTS (SELECT 1 FROM sync_feedchange WHERE scope IN (%s, %s, %s) "
                "AND version > %s)",
                [*scopes, int(upto)],
            )
        return bool(db.fetchone()[0])


def _union(
    conditions: list[str], params: dict[str, Any], view: StoreView, order: str
) -> list[FeedRow]:
    """The first ``limit`` rows of the store's scopes in feed order: one index range per scope,
    merged."""
    where = " AND ".join(conditions)
    parts = []
    for index, scope in enumerate(view.scopes):
        params[f"scope{index}"] = scope
        part_where = where.replace("%(scope)s", f"%(scope{index})s")
        parts.append(
            f"SELECT * FROM (SELECT {_COLUMNS} FROM sync_feedchange WHERE {part_where} "
            f"ORDER BY {order} LIMIT %(limit)s) AS s{index}"
        )
    sql = " UNION ALL ".join(parts) + f" ORDER BY {order} LIMIT %(limit)s"
    with connection.cursor() as db:
        db.execute(sql, params)
        return [FeedRow(*row) for row in db.fetchall()]


# --- what a change carries ----------------------------------------------------------------------


def _materialise(rows: list[FeedRow], view: StoreView, *, initial: bool) -> list[dict[str, Any]]:
    wanted: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        if row.op == "upsert" and row.obj_id is not None:
            wanted[row.entity].add(row.obj_id)
    data: dict[str, dict[int, dict[str, Any]]] = {
        entity: _LOADERS[entity](sorted(ids), view) for entity, ids in wanted.items()
    }
    changes = []
    for row in rows:
        payload = data.get(row.entity, {}).get(row.obj_id) if row.op == "upsert" else None
        if payload is not None and _KEYS[row.entity](payload) != row.entity_key:
            # The row points at an entity that now lives under another key (a price whose
            # valid_from moved, seen through a store's copy of its list): not this key's data.
            payload = None
        if payload is None and initial:
            continue  # a node with nothing has nothing to delete
        changes.append(
            {
                "entity": row.entity,
                "key": row.entity_key,
                # An entity gone from this store's view since its row was written is a delete.
                "op": "upsert" if payload is not None else "delete",
                "version": row.version,
                "data": payload,
            }
        )
    return changes


# The two loaders of nearly every change (products and prices) are plain SQL returning tuples:
# a 5,000-change page is mostly them, and the ORM's query building and row handling cost more
# than the database's work. Decimals are read as text and dates normalised, so both databases
# give the same values (SQLite's driver would return floats and strings).


def _fetch(sql: str, ids: list[int], *params: Any) -> list[tuple[Any, ...]]:
    if connection.vendor == "postgresql":
        sql, args = sql.replace("IN %(ids)s", "= ANY(%s)"), [ids, *params]
    else:
        sql, args = (
            sql.replace("IN %(ids)s", f"IN ({', '.join(['%s'] * len(ids))})"),
            [*ids, *params],
        )
    with connection.cursor() as db:
        db.execute(sql, args)
        return db.fetchall()


def _day(value: dt.date | str | None) -> str | None:
    return value if value is None or isinstance(value, str) else value.isoformat()


def _products(ids: list[int], view: StoreView) -> dict[int, dict[str, Any]]:
    barcodes: dict[int, list[str]] = defaultdict(list)
    for product_id, code in _fetch(
        "SELECT product_id, code FROM inventory_barcode WHERE product_id IN %(ids)s ORDER BY code",
        ids,
    ):
        barcodes[product_id].append(code)
    return {
        pk: {
            "sku": sku,
            "name": name,
            "barcodes": barcodes.get(pk, []),
            "unit": unit,
            "tax_code": tax_code,
            "active": bool(active),
            "weighed": bool(weighed),
        }
        for pk, sku, name, unit, tax_code, active, weighed in _fetch(
            "SELECT p.id, p.sku, p.name, p.unit, t.code, p.active, p.weighed "
            "FROM inventory_product p JOIN inventory_taxrate t ON t.id = p.tax_rate_id "
            "WHERE p.id IN %(ids)s",
            ids,
        )
    }


def _prices(ids: list[int], view: StoreView) -> dict[int, dict[str, Any]]:
    text = "r.price::text" if connection.vendor == "postgresql" else "CAST(r.price AS TEXT)"
    rows = _fetch(
        f"SELECT r.id, p.sku, {text}, r.valid_from, r.valid_to, c.minor_units "
        "FROM inventory_price r JOIN inventory_product p ON p.id = r.product_id "
        "JOIN inventory_pricelist l ON l.id = r.price_list_id "
        "JOIN inventory_currency c ON c.code = l.currency_id "
        "WHERE r.id IN %(ids)s AND r.price_list_id = %s",
        ids,
        view.price_list_id,
    )
    return {
        pk: {
            "sku": sku,
            "price": str(Decimal(price).quantize(Decimal(1).scaleb(-minor_units))),
            "valid_from": _day(valid_from),
            "valid_to": _day(valid_to),
        }
        for pk, sku, price, valid_from, valid_to, minor_units in rows
    }


def _tax_rates(ids: list[int], view: StoreView) -> dict[int, dict[str, Any]]:
    return {
        rate.pk: {
            "code": rate.code,
            "name": rate.name,
            "rate": str(rate.rate),
            "inclusive": rate.inclusive,
            "active": rate.active,
        }
        for rate in TaxRate.objects.filter(pk__in=ids)
    }


def _store_configs(ids: list[int], view: StoreView) -> dict[int, dict[str, Any]]:
    if view.store_id not in ids:
        return {}
    current = Store.objects.select_related("currency", "price_list").get(pk=view.store_id)
    return {current.pk: store_config(current)}


def store_config(store: Store) -> dict[str, Any]:
    quantum = store.currency.quantum()
    return {
        "code": store.code,
        "name": store.name,
        "timezone": store.timezone,
        "currency": store.currency_id,
        "currency_minor_units": store.currency.minor_units,
        "price_list": store.price_list.code,
        "active": store.active,
        "offline": {
            "card_limit": str(store.offline_card_limit.quantize(quantum)),
            "warn_after_hours": store.offline_warn_hours,
        },
        "supervisor_operations": list(store.supervisor_operations),
    }


def _registers(ids: list[int], view: StoreView) -> dict[int, dict[str, Any]]:
    return {
        register.pk: {"code": register.code, "name": register.name, "active": register.active}
        for register in Register.objects.filter(pk__in=ids, store_id=view.store_id)
    }


def _cashiers(ids: list[int], view: StoreView) -> dict[int, dict[str, Any]]:
    return {
        cashier.pk: {
            "code": cashier.code,
            "name": cashier.name,
            "role": cashier.role,
            "pin_hash": cashier.pin_hash,
            "active": cashier.active,
        }
        for cashier in Cashier.objects.filter(pk__in=ids, memberships__store_id=view.store_id)
    }


_LOADERS = {
    "product": _products,
    "price": _prices,
    "tax_rate": _tax_rates,
    "store_config": _store_configs,
    "register": _registers,
    "cashier": _cashiers,
}


# Pulls are frequent (an idle node polls every few seconds); record them at this resolution.
PULL_RECORD_RESOLUTION = dt.timedelta(seconds=30)
# What this process last recorded or read per node key (by its random prefix, which a reused
# primary key cannot alias): most polls then need no query at all to know nothing is due.
_RECORDED: dict[str, tuple[dt.datetime | None, dt.datetime | None]] = {}
_RECORDED_MAX = 10_000


def pull_record(*, node_key: NodeKey, complete: bool) -> None:
    """Note that ``node_key`` pulled (and, if ``complete``, that it reached the feed's end)."""
    now = timezone.now()
    fresh = now - PULL_RECORD_RESOLUTION

    def due(last_pull_at: dt.datetime | None, pull_current_at: dt.datetime | None) -> bool:
        recent = last_pull_at is not None and last_pull_at > fresh
        current = pull_current_at is not None and pull_current_at > fresh
        return not (recent and (not complete or current))

    if node_key.prefix in _RECORDED and not due(*_RECORDED[node_key.prefix]):
        return
    state = (
        NodeSyncState.objects.filter(node_key=node_key)
        .only("last_pull_at", "pull_current_at")
        .first()
    )
    recorded = (state.last_pull_at, state.pull_current_at) if state else (None, None)
    if due(*recorded):
        changes: dict[str, Any] = {"last_pull_at": now}
        if complete:
            changes["pull_current_at"] = now
        if state is None:
            NodeSyncState.objects.get_or_create(
                node_key=node_key, defaults={"store_id": node_key.store_id, **changes}
            )
        else:
            NodeSyncState.objects.filter(node_key=node_key).update(**changes)
        recorded = (now, now if complete else recorded[1])
    if len(_RECORDED) >= _RECORDED_MAX:
        _RECORDED.clear()
    _RECORDED[node_key.prefix] = recorded


_KEYS = {
    "product": lambda data: data["sku"],
    "price": lambda data: f"{data['sku']}@{data['valid_from']}",
    "tax_rate": lambda data: data["code"],
    "store_config": lambda data: data["code"],
    "register": lambda data: data["code"],
    "cashier": lambda data: data["code"],
}
