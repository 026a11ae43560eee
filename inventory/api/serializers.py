from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from erp.api.serializers import DecimalString, StrictModelSerializer, StrictSerializer
from inventory.models import (
    MONEY,
    Currency,
    Price,
    PriceList,
    Product,
    StockLocation,
    TaxRate,
    Unit,
)
from inventory.models import code_validator as _code_validator

CODE_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class CurrencySerializer(serializers.ModelSerializer):
    class Meta:
        model = Currency
        fields = ["code", "name", "minor_units"]


class TaxRateSerializer(StrictModelSerializer):
    rate = DecimalString(
        max_digits=7, decimal_places=4, min_value=Decimal("0"), max_value=Decimal("99.9999")
    )

    class Meta:
        model = TaxRate
        fields = ["code", "name", "rate", "inclusive", "active"]


class BarcodeListField(serializers.ListField):
    child = serializers.RegexField(r"^[0-9]{8,13}$", max_length=13)


class ProductSerializer(StrictModelSerializer):
    tax_code = serializers.SlugRelatedField(
        slug_field="code", queryset=TaxRate.objects.all(), source="tax_rate"
    )
    cost = DecimalString(**MONEY, min_value=Decimal("0"), required=False)
    barcodes = BarcodeListField(required=False, max_length=100, write_only=True)

    class Meta:
        model = Product
        fields = [
            "sku",
            "name",
            "unit",
            "weighed",
            "tax_code",
            "active",
            "cost",
            "barcodes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"sku": {"validators": [_code_validator]}}

    def to_representation(self, instance: Product) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["barcodes"] = [b.code for b in instance.barcodes.all()]
        return data


class ProductBulkRowSerializer(StrictSerializer):
    """One row of ``POST /products/bulk``: no database access, so 10,000 rows validate fast."""

    sku = serializers.RegexField(CODE_RE, max_length=64)
    name = serializers.CharField(max_length=200, required=False)
    unit = serializers.ChoiceField(choices=Unit.choices, required=False)
    weighed = serializers.BooleanField(required=False)
    tax_code = serializers.CharField(max_length=16, required=False)
    active = serializers.BooleanField(required=False)
    cost = DecimalString(**MONEY, min_value=Decimal("0"), required=False)
    barcodes = BarcodeListField(required=False, max_length=100)


class PriceListSerializer(StrictModelSerializer):
    currency = serializers.SlugRelatedField(slug_field="code", queryset=Currency.objects.all())

    class Meta:
        model = PriceList
        fields = ["code", "name", "currency", "active"]


class PriceSerializer(StrictModelSerializer):
    sku = serializers.SlugRelatedField(
        slug_field="sku", queryset=Product.objects.all(), source="product"
    )
    price = DecimalString(**MONEY, min_value=Decimal("0"))
    currency = serializers.CharField(source="price_list.currency_id", read_only=True)

    class Meta:
        model = Price
        fields = ["sku", "price", "currency", "valid_from", "valid_to", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        validators: list[Any] = []  # overlap and uniqueness are checked by the service

    def to_representation(self, instance: Price) -> dict[str, Any]:
        data = super().to_representation(instance)
        # Amounts travel with the currency's number of decimals: "1.99" EUR, "199" JPY.
        data["price"] = str(instance.price.quantize(instance.price_list.currency.quantum()))
        return data


class PriceBulkRowSerializer(StrictSerializer):
    sku = serializers.RegexField(CODE_RE, max_length=64)
    price = DecimalString(**MONEY, min_value=Decimal("0"))
    valid_from = serializers.DateField()
    valid_to = serializers.DateField(required=False, allow_null=True)


class BulkResultRowSerializer(serializers.Serializer):
    sku = serializers.CharField()
    valid_from = serializers.DateField(required=False)
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged"])


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rows = BulkResultRowSerializer(many=True)


class StockLocationSerializer(StrictModelSerializer):
    class Meta:
        model = StockLocation
        fields = ["code", "name", "kind", "active"]
