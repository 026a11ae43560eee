"""The store node's side of the pull: apply one page of head office's change feed to the local
mirror (``stores.local``), in one transaction together with the page's new cursor.

A crash between pages therefore re-pulls at most the page whose answer was lost, and applying
a page twice is harmless: an upsert is applied only when its ``version`` is at least the
stored one, a delete only when it is not older than what is stored (``sync-protocol.md``,
"Pull"). Changes are applied set-wise, one lookup and one write per entity and page.

A pull from no cursor (a new node, or one whose cursor head office no longer reads) gets head
office's whole current state without tombstones; it runs in a new ``generation`` and, once
complete, removes the mirror rows it did not see, so the mirror ends exactly as head office.

A change this node cannot read (a missing field, a bad decimal) fails the whole page with
``FeedError``: nothing of it is applied and the cursor stays, so the node keeps asking until
head office serves something readable, and says why meanwhile. An entity this version does
not know is skipped, so head office can add entities without breaking older nodes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from erp.errors import ApplicationError
from stores.local import (
    LocalBarcode,
    LocalCashier,
    LocalPrice,
    LocalProduct,
    LocalRegister,
    LocalStoreConfig,
    LocalTaxRate,
    NodeState,
)


class FeedError(ApplicationError):
    status = 502
    code = "feed_unreadable"


@dataclass(frozen=True)
class Change:
    entity: str
    key: str
    op: str
    version: int
    data: Mapping[str, Any] | None


@dataclass
class PageResult:
    applied: int = 0  # upserts written
    deleted: int = 0  # rows removed
    stale: int = 0  # older than what is stored, left alone
    ignored: int = 0  # entities this node does not know
    by_entity: dict[str, int] = field(default_factory=dict)


def _parse(position: int, raw: object) -> Change:
    if not isinstance(raw, Mapping):
        raise FeedError(f"Change {position} of the page is not an object.")
    entity, key, op, version = (raw.get(k) for k in ("entity", "key", "op", "version"))
    data = raw.get("data")
    if not isinstance(entity, str) or not isinstance(key, str) or not key:
        raise FeedError(f"Change {position} has no entity or key.")
    if op not in ("upsert", "delete"):
        raise FeedError(f"Change {position} ({entity} {key}) has op {op!r}.")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise FeedError(f"Change {position} ({entity} {key}) has version {version!r}.")
    if op == "upsert" and not isinstance(data, Mapping):
        raise FeedError(f"Upsert {position} ({entity} {key}) carries no data.")
    return Change(entity, key, op, version, data if op == "upsert" else None)


# --- reading the data of each entity ----------------------------------------------------------


def _field(change: Change, name: str, kind: type | tuple[type, ...] = str) -> Any:
    assert change.data is not None
    if name not in change.data:
        raise FeedError(f"{change.entity} {change.key} (version {change.version}) lacks {name}.")
    value = change.data[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise FeedError(
            f"{change.entity} {change.key} (version {change.version}): {name} is {value!r}."
        )
    return value


def _decimal(change: Change, name: str) -> Decimal:
    raw = _field(change, name)
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise FeedError(f"{change.entity} {change.key}: {name} {raw!r} is not a decimal.") from exc
    if not value.is_finite():
        raise FeedError(f"{change.entity} {change.key}: {name} {raw!r} is not a decimal.")
    return value


def _date(change: Change, name: str, *, optional: bool = False) -> dt.date | None:
    raw = _field(change, name, (str, type(None)) if optional else str)
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise FeedError(f"{change.entity} {change.key}: {name} {raw!r} is not a date.") from exc


def _product(c: Change) -> dict[str, Any]:
    return {
        "name": _field(c, "name"),
        "unit": _field(c, "unit"),
        "tax_code": _field(c, "tax_code"),
        "active": _field(c, "active", bool),
        "weighed": _field(c, "weighed", bool),
    }


def _price(c: Change) -> dict[str, Any]:
    return {
        "sku": _field(c, "sku"),
        "price": _decimal(c, "price"),
        "valid_from": _date(c, "valid_from"),
        "valid_to": _date(c, "valid_to", optional=True),
    }


def _tax_rate(c: Change) -> dict[str, Any]:
    assert c.data is not None
    return {
        "name": str(c.data.get("name") or ""),
        "rate": _decimal(c, "rate"),
        "inclusive": _field(c, "inclusive", bool),
        "active": bool(c.data.get("active", True)),
    }


def _cashier(c: Change) -> dict[str, Any]:
    return {
        "name": _field(c, "name"),
        "role": _field(c, "role"),
        "pin_hash": _field(c, "pin_hash"),
        "active": _field(c, "active", bool),
    }


def _register(c: Change) -> dict[str, Any]:
    assert c.data is not None
    return {"name": str(c.data.get("name") or ""), "active": _field(c, "active", bool)}


def _store_config(c: Change) -> dict[str, Any]:
    assert c.data is not None
    return {"data": dict(c.data)}


@dataclass(frozen=True)
class _Entity:
    model: type[models.Model]
    read: Callable[[Change], dict[str, Any]]


ENTITIES: dict[str, _Entity] = {
    "product": _Entity(LocalProduct, _product),
    "price": _Entity(LocalPrice, _price),
    "tax_rate": _Entity(LocalTaxRate, _tax_rate),
    "cashier": _Entity(LocalCashier, _cashier),
    "register": _Entity(LocalRegister, _register),
    "store_config": _Entity(LocalStoreConfig, _store_config),
}


# --- applying ---------------------------------------------------------------------------------


def _latest(changes: Sequence[Change]) -> dict[str, dict[str, Change]]:
    """Per entity and key the change with the highest version (the later one on a tie): a
    key can appear twice in a page when two of the store's scopes carry it."""
    latest: dict[str, dict[str, Change]] = {}
    for change in changes:
        per_key = latest.setdefault(change.entity, {})
        seen = per_key.get(change.key)
        if seen is None or change.version >= seen.version:
            per_key[change.key] = change
    return latest


def _apply_entity(
    entity: str, changes: Sequence[Change], result: PageResult, *, generation: int
) -> None:
    spec = ENTITIES[entity]
    model = spec.model
    pk = model._meta.pk.name
    stored = dict(
        model.objects.filter(pk__in=[c.key for c in changes]).values_list("pk", "version")
    )
    rows: list[models.Model] = []
    written: list[Change] = []
    deletes: list[str] = []
    stale: list[str] = []
    for change in changes:
        old = stored.get(change.key)
        if old is not None and change.version < old:
            stale.append(change.key)
        elif change.op == "delete":
            if old is not None:
                deletes.append(change.key)
        else:
            fields = {pk: change.key, "version": change.version, "generation": generation}
            rows.append(model(**fields, **spec.read(change)))
            written.append(change)
    if stale:
        # Seen in this generation all the same: a full pull must not sweep them away.
        model.objects.filter(pk__in=stale).update(generation=generation)
        result.stale += len(stale)
    if deletes:
        model.objects.filter(pk__in=deletes).delete()
        result.deleted += len(deletes)
    if rows:
        update_fields = [f.name for f in model._meta.concrete_fields if not f.primary_key]
        model.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=[pk], update_fields=update_fields
        )
        result.applied += len(rows)
    result.by_entity[entity] = result.by_entity.get(entity, 0) + len(rows) + len(deletes)
    if entity == "product" and written:
        _replace_barcodes(written)


def _replace_barcodes(products: Sequence[Change]) -> None:
    codes: dict[str, str] = {}
    for change in products:
        barcodes = _field(change, "barcodes", list)
        for code in barcodes:
            if not isinstance(code, str) or not code:
                raise FeedError(f"product {change.key}: barcode {code!r} is not a code.")
            codes[code] = change.key
    LocalBarcode.objects.filter(product_id__in=[c.key for c in products]).delete()
    if codes:
        # A code that moved here from a product this page does not touch changes owner.
        LocalBarcode.objects.bulk_create(
            [LocalBarcode(code=code, product_id=sku) for code, sku in codes.items()],
            update_conflicts=True,
            unique_fields=["code"],
            update_fields=["product"],
        )


def feed_page_apply(
    *,
    changes: Sequence[object],
    cursor: str,
    etag: str = "",
    complete: bool,
    now: dt.datetime | None = None,
) -> PageResult:
    """Apply one pull page and store ``cursor`` (and, when ``complete`` — the page said
    ``has_more: false`` — the time of the pull), all in one transaction."""
    parsed = [_parse(position, raw) for position, raw in enumerate(changes)]
    result = PageResult()
    known = [c for c in parsed if c.entity in ENTITIES]
    result.ignored = len(parsed) - len(known)
    with transaction.atomic():
        state = NodeState.objects.filter(pk=1).values("pull_generation", "resyncing").first()
        if state is None:
            raise FeedError("This node is not set up (no node state); run manage.py node_init.")
        generation = state["pull_generation"]
        latest = _latest(known)
        # The order of entities is free: the mirror's only foreign key is barcode → product,
        # and barcodes are written with (after) their product.
        for entity in ENTITIES:
            if entity in latest:
                _apply_entity(entity, list(latest[entity].values()), result, generation=generation)
        changes_to_state: dict[str, Any] = {"cursor": cursor, "pull_etag": etag}
        if complete:
            changes_to_state["last_pull_at"] = now or timezone.now()
            if state["resyncing"]:
                result.deleted += _sweep(generation)
                changes_to_state["resyncing"] = False
        NodeState.objects.filter(pk=1).update(**changes_to_state)
    return result


def feed_resync_start() -> int:
    """Start a pull from no cursor: head office serves its whole current state, without
    tombstones, so the mirror rows it does not serve are removed once it is complete (a new
    ``generation``; interrupted, the pull carries on from its cursor in the same one)."""
    with transaction.atomic():
        NodeState.objects.filter(pk=1).update(
            cursor="", pull_etag="", pull_generation=F("pull_generation") + 1, resyncing=True
        )
        return NodeState.objects.values_list("pull_generation", flat=True).get(pk=1)


def _sweep(generation: int) -> int:
    removed = 0
    for spec in ENTITIES.values():
        count, _ = spec.model.objects.filter(generation__lt=generation).delete()
        removed += count
    return removed
