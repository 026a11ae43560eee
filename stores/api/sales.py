"""``GET /api/v1/sales/``: sales and returns as the tills recorded them, keyed by event id.

Read-only: sales are written by sync ingestion only. Amounts and quantities are decimal
strings; returns carry positive amounts and ``type`` gives the sign.
"""

from __future__ import annotations

from typing import Any

import django_filters as filters
from django.db.models import QuerySet
from rest_framework import serializers

from erp.api.views import ReadViewSet
from inventory.selectors import currency_quantum
from stores import selectors
from stores.models import Sale, SaleLine, Tender

UUID_RE = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class SaleLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = SaleLine
        fields = [
            "line_no",
            "sku",
            "qty",
            "unit_price",
            "discount",
            "tax_code",
            "line_total",
            "price_override_reason",
            "original_line_no",
        ]
        read_only_fields = fields


class TenderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tender
        fields = ["method", "amount", "change", "reference", "offline_authorized"]
        read_only_fields = fields


class SaleSerializer(serializers.ModelSerializer):
    store = serializers.CharField(source="store.code", read_only=True)
    register = serializers.CharField(source="register.code", read_only=True)
    original_event_id = serializers.UUIDField(
        source="original_event",
        read_only=True,
        allow_null=True,
        help_text="For a return: the sale it returns (null for a return without receipt).",
    )
    lines = SaleLineSerializer(many=True, read_only=True)
    tenders = TenderSerializer(many=True, read_only=True)

    class Meta:
        model = Sale
        fields = [
            "event_id",
            "type",
            "store",
            "register",
            "seq",
            "receipt_no",
            "basket_id",
            "session_id",
            "cashier",
            "currency",
            "net",
            "tax",
            "gross",
            "occurred_at",
            "business_date",
            "original_event_id",
            "received_at",
            "lines",
            "tenders",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Sale) -> dict[str, Any]:
        data = super().to_representation(instance)
        # Amounts travel with the currency's number of decimals ("3.98" EUR, "398" JPY).
        quantum = currency_quantum(instance.currency)
        for name in ("net", "tax", "gross"):
            data[name] = str(getattr(instance, name).quantize(quantum))
        for line, row in zip(instance.lines.all(), data["lines"], strict=True):
            for name in ("unit_price", "discount", "line_total"):
                row[name] = str(getattr(line, name).quantize(quantum))
        for tender, row in zip(instance.tenders.all(), data["tenders"], strict=True):
            for name in ("amount", "change"):
                row[name] = str(getattr(tender, name).quantize(quantum))
        return data


class SaleFilter(filters.FilterSet):
    store = filters.CharFilter(field_name="store__code", label="Store code")
    register = filters.CharFilter(field_name="register__code", label="Register code")
    business_date = filters.DateFilter()
    business_date_after = filters.DateFilter(field_name="business_date", lookup_expr="gte")
    business_date_before = filters.DateFilter(field_name="business_date", lookup_expr="lte")
    receipt_no = filters.CharFilter()

    class Meta:
        model = Sale
        fields = ["type"]


class SaleViewSet(ReadViewSet):
    """Sales and returns, with lines and tenders; filter by store, business date, type, register."""

    serializer_class = SaleSerializer
    filterset_class = SaleFilter
    lookup_field = "event_id"
    lookup_value_regex = UUID_RE
    ordering_fields = ["occurred_at", "business_date", "seq", "gross"]

    def get_queryset(self):
        return selectors.sale_list()

    def paginate_queryset(self, queryset: QuerySet[Sale]) -> list[Sale] | None:
        page = super().paginate_queryset(queryset)
        return None if page is None else selectors.sale_details(page)

    def get_object(self) -> Sale:
        return selectors.sale_details([super().get_object()])[0]
