"""Reads of stores, registers and node keys."""

from __future__ import annotations

import datetime as dt
import operator
import uuid
from collections import defaultdict
from functools import reduce

from django.db.models import Prefetch, Q, QuerySet, prefetch_related_objects

from inventory.models import StockLevel
from stores.models import Cashier, NodeKey, Register, Sale, SaleLine, Store, Tender


def store_list() -> QuerySet[Store]:
    return Store.objects.select_related(
        "currency", "price_list", "stock_location"
    ).prefetch_related(Prefetch("registers", queryset=Register.objects.order_by("code")))


def register_list(*, store: Store) -> QuerySet[Register]:
    return Register.objects.filter(store=store).select_related("store")


def node_key_list(*, store: Store) -> QuerySet[NodeKey]:
    return NodeKey.objects.filter(store=store).select_related("store", "created_by", "revoked_by")


def sale_list() -> QuerySet[Sale]:
    """Sales and returns, without their lines and tenders: ``sale_details`` adds those to the
    sales that are shown."""
    return Sale.objects.select_related("store", "register").order_by(
        "store__code", "register__code", "seq"
    )


def sale_details(sales: list[Sale]) -> list[Sale]:
    """Fetch the lines and tenders of ``sales`` (two queries for any number of sales).

    Lines and tenders are indexed by (store, business date, sale) only (see ``SaleLine``), so
    the queries name each store-day with its sales: one index range per store-day, however
    many stores and days the sales span.
    """
    days: dict[tuple[int, dt.date], list[uuid.UUID]] = defaultdict(list)
    for sale in sales:
        days[(sale.store_id, sale.business_date)].append(sale.pk)
    own = reduce(
        operator.or_,
        (
            Q(store_id=store, business_date=day, sale_id__in=ids)
            for (store, day), ids in days.items()
        ),
        Q(pk__in=[]),
    )
    prefetch_related_objects(
        sales,
        Prefetch("lines", queryset=SaleLine.objects.filter(own).order_by("line_no")),
        Prefetch("tenders", queryset=Tender.objects.filter(own).order_by("position")),
    )
    return sales


def stock_on_hand_list() -> QuerySet[StockLevel]:
    """On hand per location and product, with the product's cost and the location's store
    (none for a warehouse). Lives here, not in ``inventory``: a location knows no store."""
    return StockLevel.objects.select_related("location__store", "product").order_by(
        "location__code", "product__sku"
    )


def cashier_list() -> QuerySet[Cashier]:
    """Cashiers with the codes of their stores: two queries for any page size."""
    return Cashier.objects.prefetch_related(
        Prefetch("stores", queryset=Store.objects.only("pk", "code").order_by("code"))
    ).order_by("code")
