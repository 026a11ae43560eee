from __future__ import annotations

import django_filters as filters
from django.db.models import Q, QuerySet

from inventory.models import Price, Product, StockLocation, TaxRate


class TaxRateFilter(filters.FilterSet):
    class Meta:
        model = TaxRate
        fields = ["active", "inclusive"]


class ProductFilter(filters.FilterSet):
    sku = filters.CharFilter(lookup_expr="exact")
    sku_prefix = filters.CharFilter(field_name="sku", lookup_expr="startswith")
    name = filters.CharFilter(lookup_expr="icontains")
    tax_code = filters.CharFilter(field_name="tax_rate__code")
    barcode = filters.CharFilter(field_name="barcodes__code")
    updated_since = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    search = filters.CharFilter(method="filter_search", label="SKU, name or barcode")

    class Meta:
        model = Product
        fields = ["active", "weighed", "unit"]

    def filter_search(self, queryset: QuerySet[Product], name: str, value: str) -> QuerySet:
        return queryset.filter(
            Q(sku__icontains=value) | Q(name__icontains=value) | Q(barcodes__code=value)
        ).distinct()


class PriceFilter(filters.FilterSet):
    sku = filters.CharFilter(field_name="product__sku")
    valid_on = filters.DateFilter(method="filter_valid_on", label="Prices valid on this date")
    valid_from_after = filters.DateFilter(field_name="valid_from", lookup_expr="gte")
    valid_from_before = filters.DateFilter(field_name="valid_from", lookup_expr="lte")

    class Meta:
        model = Price
        fields: list[str] = []

    def filter_valid_on(self, queryset: QuerySet[Price], name: str, value: object) -> QuerySet:
        return queryset.filter(valid_from__lte=value).filter(
            Q(valid_to__isnull=True) | Q(valid_to__gte=value)
        )


class StockLocationFilter(filters.FilterSet):
    class Meta:
        model = StockLocation
        fields = ["kind", "active"]
