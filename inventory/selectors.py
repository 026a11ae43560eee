"""Reads of the catalogue, with what each list needs joined up front."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

from django.db.models import Prefetch, Q, QuerySet

from inventory.models import Barcode, Currency, Price, PriceList, Product, StockLocation, TaxRate


def tax_rate_list() -> QuerySet[TaxRate]:
    return TaxRate.objects.all()


def currency_list() -> QuerySet[Currency]:
    return Currency.objects.all()


def product_list() -> QuerySet[Product]:
    return Product.objects.select_related("tax_rate").prefetch_related(
        Prefetch("barcodes", queryset=Barcode.objects.order_by("code"))
    )


def product_by_barcode(code: str) -> Product | None:
    return product_list().filter(barcodes__code=code).first()


def price_list_list() -> QuerySet[PriceList]:
    return PriceList.objects.select_related("currency")


def price_list_prices(*, price_list: PriceList) -> QuerySet[Price]:
    return (
        Price.objects.filter(price_list=price_list)
        .select_related("product", "price_list__currency")
        .order_by("product__sku", "valid_from")
    )


def prices_valid_on(queryset: QuerySet[Price], day: dt.date) -> QuerySet[Price]:
    return queryset.filter(valid_from__lte=day).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gte=day)
    )


def stock_location_list() -> QuerySet[StockLocation]:
    return StockLocation.objects.all()


@functools.lru_cache(maxsize=256)
def currency_quantum(code: str) -> Decimal:
    """``Decimal("0.01")`` for EUR, ``Decimal("1")`` for JPY: ISO 4217 minor units are fixed,
    so they are read once per process. An unknown code keeps 4 decimals (the columns')."""
    minor = Currency.objects.filter(code=code).values_list("minor_units", flat=True).first()
    return Decimal(1).scaleb(-(minor if minor is not None else 4))
