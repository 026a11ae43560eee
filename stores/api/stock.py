"""``GET /api/v1/stock/``: on hand per location and SKU, valued at the product's cost.

Here rather than in ``inventory.api``: ``?store=`` and the ``store`` column need the store
that sells from a location, and ``inventory`` does not know stores (``stores`` depends on it,
not the other way round). Read-only: stock changes only through the ledger.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import django_filters as filters
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers, viewsets

from inventory.models import MONEY, StockLevel
from stores import selectors

VALUE_PLACES = MONEY["decimal_places"]
VALUE_QUANTUM = Decimal(1).scaleb(-VALUE_PLACES)


class StockLevelSerializer(serializers.ModelSerializer):
    store = serializers.SerializerMethodField(
        help_text="Code of the store selling from this location; null for a warehouse."
    )
    location = serializers.CharField(source="location.code", read_only=True)
    sku = serializers.CharField(source="product.sku", read_only=True)
    name = serializers.CharField(source="product.name", read_only=True)
    unit = serializers.CharField(source="product.unit", read_only=True)
    cost = serializers.DecimalField(source="product.cost", **MONEY, read_only=True)
    value = serializers.SerializerMethodField(help_text="qty × cost, as a decimal string.")

    class Meta:
        model = StockLevel
        fields = ["store", "location", "sku", "name", "unit", "qty", "cost", "value", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_store(self, obj: StockLevel) -> str | None:
        store = getattr(obj.location, "store", None)
        return store.code if store is not None else None

    @extend_schema_field(serializers.DecimalField(max_digits=28, decimal_places=VALUE_PLACES))
    def get_value(self, obj: StockLevel) -> str:
        return str((obj.qty * obj.product.cost).quantize(VALUE_QUANTUM, rounding=ROUND_HALF_UP))


class StockFilter(filters.FilterSet):
    store = filters.CharFilter(field_name="location__store__code", label="Store code")
    location = filters.CharFilter(field_name="location__code", label="Stock location code")
    sku = filters.CharFilter(field_name="product__sku", label="SKU")

    class Meta:
        model = StockLevel
        fields: list[str] = []


class StockViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """On hand per stock location and SKU, with its value at standard cost (read-only)."""

    serializer_class = StockLevelSerializer
    filterset_class = StockFilter
    ordering_fields = ["qty", "updated_at"]

    def get_queryset(self):
        return selectors.stock_on_hand_list()
