"""Writes to the catalogue. Every function is one transaction and leaves a history row."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from erp.errors import ValidationFailed
from erp.writes import record_delete, record_save, record_update
from inventory import hooks
from inventory.barcodes import barcode_symbology
from inventory.models import Barcode, Currency, Price, PriceList, Product, StockLocation, TaxRate

PRODUCT_FIELDS = ("name", "unit", "weighed", "tax_rate", "active", "cost")
PRICE_FIELDS = ("price", "valid_to")


# --- tax rates ----------------------------------------------------------------------------------


def tax_rate_create(*, actor: Any, reason: str | None = None, **fields: Any) -> TaxRate:
    return record_save(instance=TaxRate(**fields), actor=actor, reason=reason)


def tax_rate_update(
    *, tax_rate: TaxRate, actor: Any, changes: dict[str, Any], reason: str | None = None
) -> TaxRate:
    return record_update(
        instance=tax_rate, changes=changes, actor=actor, reason=reason, immutable=("code",)
    )


def tax_rate_delete(*, tax_rate: TaxRate, actor: Any, reason: str | None = None) -> None:
    record_delete(instance=tax_rate, actor=actor, reason=reason)


# --- products and barcodes ----------------------------------------------------------------------


def _check_barcodes(codes: Sequence[str]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for code in codes:
        try:
            barcode_symbology(code)
        except ValueError as exc:
            errors.setdefault("barcodes", []).append(f"{code}: {exc}")
        if code in seen:
            errors.setdefault("barcodes", []).append(f"{code}: listed twice.")
        seen.add(code)
    return errors


def _barcodes_taken(codes: Iterable[str], *, exclude_product_id: int | None) -> dict[str, str]:
    """Barcodes among ``codes`` that belong to another product: code -> that product's SKU."""
    taken = Barcode.objects.filter(code__in=list(codes)).select_related("product")
    if exclude_product_id is not None:
        taken = taken.exclude(product_id=exclude_product_id)
    return {b.code: b.product.sku for b in taken}


def _product_barcodes_set(
    *, product: Product, codes: Sequence[str], actor: Any, reason: str | None = None
) -> None:
    errors = _check_barcodes(codes)
    if errors:
        raise ValidationFailed(errors["barcodes"][0], details=errors)
    taken = _barcodes_taken(codes, exclude_product_id=product.pk)
    if taken:
        details = {"barcodes": [f"{c}: already belongs to product {s}." for c, s in taken.items()]}
        raise ValidationFailed(details["barcodes"][0], details=details)
    current = {b.code: b for b in product.barcodes.all()}
    for code, barcode in current.items():
        if code not in codes:
            record_delete(instance=barcode, actor=actor, reason=reason)
    for code in codes:
        if code not in current:
            record_save(instance=Barcode(product=product, code=code), actor=actor, reason=reason)


@transaction.atomic
def product_create(
    *, actor: Any, barcodes: Sequence[str] = (), reason: str | None = None, **fields: Any
) -> Product:
    product = record_save(instance=Product(**fields), actor=actor, reason=reason)
    _product_barcodes_set(product=product, codes=list(barcodes), actor=actor, reason=reason)
    hooks.products_created([product.sku])
    return product


@transaction.atomic
def product_update(
    *,
    product: Product,
    actor: Any,
    changes: dict[str, Any],
    barcodes: Sequence[str] | None = None,
    reason: str | None = None,
) -> Product:
    record_update(instance=product, changes=changes, actor=actor, reason=reason, immutable=("sku",))
    if barcodes is not None:
        _product_barcodes_set(product=product, codes=list(barcodes), actor=actor, reason=reason)
    return product


@transaction.atomic
def product_delete(*, product: Product, actor: Any, reason: str | None = None) -> bool:
    """Delete a product never used, or deactivate a used one. Returns True if deleted.

    "Used" is anything that protects the row (stock moves, sale lines): the delete is tried in
    a savepoint and falls back to deactivation.
    """
    from erp.errors import InUse

    try:
        with transaction.atomic():
            for barcode in product.barcodes.all():
                record_delete(instance=barcode, actor=actor, reason=reason)
            record_delete(instance=product, actor=actor, reason=reason)
        return True
    except InUse:
        if product.active:
            record_update(
                instance=product,
                changes={"active": False},
                actor=actor,
                reason="deactivated: in use",
            )
        return False


@dataclass
class BulkResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)


def _raise_row_errors(row_errors: dict[int, dict[str, list[str]]], what: str) -> None:
    if not row_errors:
        return
    rows = [{"index": i, "errors": row_errors[i]} for i in sorted(row_errors)]
    first = rows[0]
    field_name, messages = next(iter(first["errors"].items()))
    raise ValidationFailed(
        f"{len(rows)} of the {what} rows are not valid; nothing was changed. "
        f"First: row {first['index']}, {field_name}: {messages[0]}",
        code="invalid_rows",
        details={"rows": rows},
    )


@transaction.atomic
def products_bulk_upsert(*, actor: Any, rows: Sequence[dict[str, Any]]) -> BulkResult:
    """Create or update products by SKU, all or nothing.

    Each row is shaped like the product resource (``tax_code`` names the tax rate;
    ``barcodes``, when present, replaces the product's barcodes). Rows are checked together
    against the database and against each other before anything is written; any bad row
    refuses the whole request with per-row errors.
    """
    tax_rates = {t.code: t for t in TaxRate.objects.all()}
    skus = [row["sku"] for row in rows]
    # Locked, in primary-key order, so an edit made meanwhile (admin, API) is not overwritten
    # by the copies read here: it waits for this request, or this request waits for it.
    existing = {
        p.sku: p for p in Product.objects.select_for_update().filter(sku__in=skus).order_by("pk")
    }
    row_errors: dict[int, dict[str, list[str]]] = defaultdict(dict)

    first_index: dict[str, int] = {}
    for index, row in enumerate(rows):
        if row["sku"] in first_index:
            row_errors[index]["sku"] = [f"Also in row {first_index[row['sku']]}."]
        else:
            first_index[row["sku"]] = index
        tax_code = row.get("tax_code")
        if tax_code is not None and tax_code not in tax_rates:
            row_errors[index]["tax_code"] = [f"Unknown tax code {tax_code!r}."]
        if tax_code is None and row["sku"] not in existing:
            row_errors[index]["tax_code"] = ["This field is required for a new product."]
        if "name" not in row and row["sku"] not in existing:
            row_errors[index]["name"] = ["This field is required for a new product."]
        product = existing.get(row["sku"])
        unit = row.get("unit", product.unit if product else "each")
        weighed = row.get("weighed", product.weighed if product else False)
        if weighed and unit != "kg":
            row_errors[index]["weighed"] = ["A weighed product is sold in kg."]
        if "barcodes" in row:
            row_errors[index].update(_check_barcodes(row["barcodes"]))

    # Barcodes: each belongs to one product in the final state.
    new_owner: dict[str, tuple[int, str]] = {}
    released: set[str] = set()
    existing_barcodes: dict[str, list[str]] = defaultdict(list)
    product_ids = [p.pk for p in existing.values()]
    for code, product_id in Barcode.objects.filter(product_id__in=product_ids).values_list(
        "code", "product_id"
    ):
        existing_barcodes[product_id].append(code)
    for index, row in enumerate(rows):
        if "barcodes" not in row:
            continue
        product = existing.get(row["sku"])
        if product is not None:
            released.update(set(existing_barcodes[product.pk]) - set(row["barcodes"]))
        for code in row["barcodes"]:
            if code in new_owner and new_owner[code][1] != row["sku"]:
                row_errors[index].setdefault("barcodes", []).append(
                    f"{code}: also given to {new_owner[code][1]} in row {new_owner[code][0]}."
                )
            new_owner[code] = (index, row["sku"])
    claimed = [code for code in new_owner if code not in released]
    for code, owner_sku in _barcodes_taken(claimed, exclude_product_id=None).items():
        index, sku = new_owner[code]
        if owner_sku != sku:
            row_errors[index].setdefault("barcodes", []).append(
                f"{code}: already belongs to product {owner_sku}."
            )
    _raise_row_errors({i: e for i, e in row_errors.items() if e}, "product")

    # Write: products, then barcodes (removals before additions, so codes can move).
    now = timezone.now()
    result = BulkResult()
    to_create: list[Product] = []
    to_update: list[Product] = []
    for row in rows:
        values = {k: row[k] for k in ("name", "unit", "weighed", "active", "cost") if k in row}
        if "tax_code" in row:
            values["tax_rate"] = tax_rates[row["tax_code"]]
        product = existing.get(row["sku"])
        if product is None:
            product = Product(sku=row["sku"], created_at=now, updated_at=now, **values)
            to_create.append(product)
            result.rows.append({"sku": row["sku"], "status": "created"})
            continue
        changed = [
            name
            for name, value in values.items()
            if getattr(product, name if name != "tax_rate" else "tax_rate_id")
            != (value.pk if name == "tax_rate" else value)
        ]
        barcodes_changed = "barcodes" in row and set(row["barcodes"]) != set(
            existing_barcodes[product.pk]
        )
        if changed:
            for name in changed:
                setattr(product, name, values[name])
            product.updated_at = now
            to_update.append(product)
        if changed or barcodes_changed:
            result.rows.append({"sku": row["sku"], "status": "updated"})
        else:
            result.rows.append({"sku": row["sku"], "status": "unchanged"})
    result.created = len(to_create)
    result.updated = sum(1 for r in result.rows if r["status"] == "updated")
    result.unchanged = sum(1 for r in result.rows if r["status"] == "unchanged")

    user = actor if getattr(actor, "is_authenticated", False) else None
    if to_create:
        hooks.products_created([p.sku for p in to_create])
        bulk_create_with_history(
            to_create,
            Product,
            batch_size=1000,
            default_user=user,
            default_change_reason="bulk upsert",
            default_date=now,
        )
    if to_update:
        bulk_update_with_history(
            to_update,
            Product,
            [*PRODUCT_FIELDS, "updated_at"],
            batch_size=1000,
            default_user=user,
            default_change_reason="bulk upsert",
            default_date=now,
        )
    by_sku = {p.sku: p for p in [*existing.values(), *to_create]}
    removed: list[Barcode] = []
    added: list[Barcode] = []
    for row in rows:
        if "barcodes" not in row:
            continue
        product = by_sku[row["sku"]]
        current = set(existing_barcodes.get(product.pk, []))
        wanted = set(row["barcodes"])
        removed_codes = current - wanted
        if removed_codes:
            removed.extend(Barcode.objects.filter(product=product, code__in=removed_codes))
        added.extend(
            Barcode(product=product, code=c, created_at=now)
            for c in row["barcodes"]
            if c not in current
        )
    for barcode in removed:
        record_delete(instance=barcode, actor=actor, reason="bulk upsert")
    if added:
        bulk_create_with_history(
            added,
            Barcode,
            batch_size=1000,
            default_user=user,
            default_change_reason="bulk upsert",
            default_date=now,
        )
    return result


# --- price lists and prices ---------------------------------------------------------------------


def price_list_create(*, actor: Any, reason: str | None = None, **fields: Any) -> PriceList:
    return record_save(instance=PriceList(**fields), actor=actor, reason=reason)


def price_list_update(
    *, price_list: PriceList, actor: Any, changes: dict[str, Any], reason: str | None = None
) -> PriceList:
    if (
        "currency" in changes
        and changes["currency"] != price_list.currency
        and (price_list.prices.exists() or price_list.stores.exists())
    ):
        raise ValidationFailed(
            "The currency of a price list in use cannot change; create a new list.",
            details={"currency": ["The price list has prices or stores."]},
        )
    return record_update(
        instance=price_list, changes=changes, actor=actor, reason=reason, immutable=("code",)
    )


def price_list_delete(*, price_list: PriceList, actor: Any, reason: str | None = None) -> None:
    record_delete(instance=price_list, actor=actor, reason=reason)


def _price_precision_error(price: Decimal, currency: Currency) -> str | None:
    exponent = price.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > currency.minor_units:
        return f"{currency.code} amounts have at most {currency.minor_units} decimals."
    return None


def _overlap(a_from: dt.date, a_to: dt.date | None, b_from: dt.date, b_to: dt.date | None) -> bool:
    return a_from <= (b_to or dt.date.max) and b_from <= (a_to or dt.date.max)


def _defer_overlap_check() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS price_validity_no_overlap DEFERRED")


def _validate_price(instance: Price) -> None:
    errors: dict[str, list[str]] = {}
    precision = _price_precision_error(instance.price, instance.price_list.currency)
    if precision:
        errors["price"] = [precision]
    if instance.valid_to is not None and instance.valid_to < instance.valid_from:
        errors["valid_to"] = ["valid_to is before valid_from."]
    others = Price.objects.filter(
        price_list_id=instance.price_list_id, product_id=instance.product_id
    ).exclude(pk=instance.pk)
    for other in others:
        if _overlap(instance.valid_from, instance.valid_to, other.valid_from, other.valid_to):
            errors.setdefault("valid_from", []).append(
                f"Overlaps the price valid from {other.valid_from} to "
                f"{other.valid_to or 'open end'}."
            )
    if errors:
        first_field, messages = next(iter(errors.items()))
        raise ValidationFailed(f"{first_field}: {messages[0]}", details=errors)


@transaction.atomic
def price_create(
    *, actor: Any, price_list: PriceList, product: Product, reason: str | None = None, **fields: Any
) -> Price:
    instance = Price(price_list=price_list, product=product, **fields)
    _validate_price(instance)
    return record_save(instance=instance, actor=actor, reason=reason)


@transaction.atomic
def price_update(
    *, price: Price, actor: Any, changes: dict[str, Any], reason: str | None = None
) -> Price:
    for name in ("price_list", "product"):
        if name in changes and changes[name] != getattr(price, name):
            raise ValidationFailed(f"{name} cannot be changed.", details={name: ["Immutable."]})
    for name, value in changes.items():
        setattr(price, name, value)
    _validate_price(price)
    return record_save(instance=price, actor=actor, reason=reason)


def price_delete(*, price: Price, actor: Any, reason: str | None = None) -> None:
    record_delete(instance=price, actor=actor, reason=reason)


@transaction.atomic
def prices_bulk_upsert(
    *, actor: Any, price_list: PriceList, rows: Sequence[dict[str, Any]]
) -> BulkResult:
    """Create or update the prices of one list by ``(sku, valid_from)``, all or nothing.

    The final state is checked before anything is written: every SKU known, amounts within
    the currency's decimals, ranges ordered, and no two ranges of one SKU overlapping (rows
    with each other and with prices already stored). The database's exclusion constraint is
    deferred to the commit so that adjacent ranges may be shifted in one request.
    """
    currency = price_list.currency
    skus = sorted({row["sku"] for row in rows})
    products = {p.sku: p for p in Product.objects.filter(sku__in=skus)}
    stored: dict[tuple[int, dt.date], Price] = {
        (p.product_id, p.valid_from): p
        for p in Price.objects.select_for_update()
        .filter(price_list=price_list, product__sku__in=skus)
        .order_by("pk")
    }
    row_errors: dict[int, dict[str, list[str]]] = defaultdict(dict)
    final: dict[int, dict[dt.date, tuple[dt.date | None, int | None]]] = defaultdict(dict)
    for (product_id, valid_from), price in stored.items():
        final[product_id][valid_from] = (price.valid_to, None)
    seen: dict[tuple[str, dt.date], int] = {}
    for index, row in enumerate(rows):
        product = products.get(row["sku"])
        if product is None:
            row_errors[index]["sku"] = [f"Unknown SKU {row['sku']!r}."]
            continue
        key = (row["sku"], row["valid_from"])
        if key in seen:
            row_errors[index]["valid_from"] = [f"Same sku and valid_from as row {seen[key]}."]
            continue
        seen[key] = index
        precision = _price_precision_error(row["price"], currency)
        if precision:
            row_errors[index]["price"] = [precision]
        valid_to = row.get("valid_to")
        if valid_to is not None and valid_to < row["valid_from"]:
            row_errors[index]["valid_to"] = ["valid_to is before valid_from."]
        final[product.pk][row["valid_from"]] = (valid_to, index)
    for ranges in final.values():
        for (a_from, (a_to, a_index)), (b_from, (b_to, b_index)) in pairwise(
            sorted(ranges.items())
        ):
            if _overlap(a_from, a_to, b_from, b_to):
                for index, other_from in ((b_index, a_from), (a_index, b_from)):
                    if index is not None:
                        row_errors[index].setdefault("valid_from", []).append(
                            f"Overlaps the price valid from {other_from}."
                        )
                        break
    _raise_row_errors({i: e for i, e in row_errors.items() if e}, "price")

    _defer_overlap_check()
    now = timezone.now()
    result = BulkResult()
    to_create: list[Price] = []
    to_update: list[Price] = []
    for row in rows:
        product = products[row["sku"]]
        current = stored.get((product.pk, row["valid_from"]))
        valid_to = row.get("valid_to")
        if current is None:
            to_create.append(
                Price(
                    price_list=price_list,
                    product=product,
                    price=row["price"],
                    valid_from=row["valid_from"],
                    valid_to=valid_to,
                    created_at=now,
                    updated_at=now,
                )
            )
            result.rows.append(
                {"sku": row["sku"], "valid_from": row["valid_from"], "status": "created"}
            )
        elif current.price != row["price"] or current.valid_to != valid_to:
            current.price, current.valid_to, current.updated_at = row["price"], valid_to, now
            to_update.append(current)
            result.rows.append(
                {"sku": row["sku"], "valid_from": row["valid_from"], "status": "updated"}
            )
        else:
            result.rows.append(
                {"sku": row["sku"], "valid_from": row["valid_from"], "status": "unchanged"}
            )
    user = actor if getattr(actor, "is_authenticated", False) else None
    # Shrinking ranges first keeps SQLite's row-level overlap trigger satisfied throughout.
    to_update.sort(key=lambda p: p.valid_to or dt.date.max)
    if to_update:
        bulk_update_with_history(
            to_update,
            Price,
            [*PRICE_FIELDS, "updated_at"],
            batch_size=1000,
            default_user=user,
            default_change_reason="bulk upsert",
            default_date=now,
        )
    if to_create:
        bulk_create_with_history(
            to_create,
            Price,
            batch_size=1000,
            default_user=user,
            default_change_reason="bulk upsert",
            default_date=now,
        )
    result.created, result.updated = len(to_create), len(to_update)
    result.unchanged = len(rows) - result.created - result.updated
    return result


# --- stock locations ----------------------------------------------------------------------------


def stock_location_create(*, actor: Any, reason: str | None = None, **fields: Any) -> StockLocation:
    return record_save(instance=StockLocation(**fields), actor=actor, reason=reason)


def stock_location_update(
    *, location: StockLocation, actor: Any, changes: dict[str, Any], reason: str | None = None
) -> StockLocation:
    return record_update(
        instance=location, changes=changes, actor=actor, reason=reason, immutable=("code",)
    )


def stock_location_delete(
    *, location: StockLocation, actor: Any, reason: str | None = None
) -> None:
    record_delete(instance=location, actor=actor, reason=reason)
