from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from erp.api.serializers import DecimalString, StrictModelSerializer, StrictSerializer
from inventory.models import Currency, PriceList, StockLocation
from stores.models import (
    MONEY,
    SUPERVISOR_OPERATIONS,
    Cashier,
    NodeKey,
    Register,
    Store,
    validate_timezone,
)
from stores.services import cashier_pin_errors, store_offline_card_limit_errors


class StoreSerializer(StrictModelSerializer):
    timezone = serializers.CharField(max_length=64, validators=[validate_timezone])
    currency = serializers.SlugRelatedField(slug_field="code", queryset=Currency.objects.all())
    price_list = serializers.SlugRelatedField(slug_field="code", queryset=PriceList.objects.all())
    stock_location = serializers.SlugRelatedField(
        slug_field="code",
        queryset=StockLocation.objects.all(),
        required=False,
        help_text="Defaults to a new sales-floor location with the store's code.",
    )
    registers = serializers.SerializerMethodField()
    offline_card_limit = DecimalString(
        **MONEY,
        min_value=Decimal("0"),
        required=False,
        help_text="Largest card payment a till accepts offline, in the store's currency, as a "
        'string with at most the currency\'s decimals ("50.00"); "0" refuses cards offline.',
    )
    offline_warn_hours = serializers.IntegerField(
        min_value=1,
        max_value=720,
        required=False,
        help_text="Hours without a successful sync before the till warns the cashier.",
    )
    supervisor_operations = serializers.ListField(
        child=serializers.ChoiceField(choices=SUPERVISOR_OPERATIONS),
        required=False,
        allow_empty=True,
        max_length=len(SUPERVISOR_OPERATIONS),
        help_text="Till operations that need a supervisor's code and PIN.",
    )

    class Meta:
        model = Store
        fields = [
            "code",
            "name",
            "timezone",
            "currency",
            "price_list",
            "stock_location",
            "active",
            "offline_card_limit",
            "offline_warn_hours",
            "supervisor_operations",
            "registers",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_registers(self, obj: Store) -> list[str]:
        return [r.code for r in obj.registers.all()]

    def validate_timezone(self, value: str) -> str:
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Checked when either changes: a store moving to JPY must not keep a limit of 50.50.
        if "offline_card_limit" not in attrs and "currency" not in attrs:
            return attrs
        limit = attrs.get("offline_card_limit", getattr(self.instance, "offline_card_limit", None))
        currency = attrs.get("currency") or getattr(self.instance, "currency", None)
        if limit is not None and currency is not None:
            errors = store_offline_card_limit_errors(limit, currency)
            if errors:
                raise serializers.ValidationError({"offline_card_limit": errors})
        return attrs

    def to_representation(self, instance: Store) -> dict[str, Any]:
        data = super().to_representation(instance)
        # Amounts travel with the currency's number of decimals: "50.00" EUR, "5000" JPY.
        data["offline_card_limit"] = str(
            instance.offline_card_limit.quantize(instance.currency.quantum())
        )
        return data


class RegisterSerializer(StrictModelSerializer):
    class Meta:
        model = Register
        fields = ["code", "name", "active", "created_at"]
        read_only_fields = ["created_at"]
        validators: list[Any] = []  # uniqueness within the store is checked by the model


class NodeKeySerializer(serializers.ModelSerializer):
    store = serializers.CharField(source="store.code", read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    revoked_by = serializers.CharField(source="revoked_by.username", default=None, read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = NodeKey
        fields = [
            "prefix",
            "store",
            "label",
            "active",
            "created_at",
            "created_by",
            "last_used_at",
            "revoked_at",
            "revoked_by",
        ]
        read_only_fields = fields


class NodeKeyIssueSerializer(StrictSerializer):
    label = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")


class IssuedNodeKeySerializer(NodeKeySerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once; store it on the node.")

    class Meta(NodeKeySerializer.Meta):
        fields = ["key", *NodeKeySerializer.Meta.fields]
        read_only_fields = fields


class PinField(serializers.CharField):
    """A PIN travels as a string: a JSON number would lose its leading zeros."""

    default_error_messages = {"not_a_string": 'Send the PIN as a string, for example "0429".'}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class CashierSerializer(StrictModelSerializer):
    """A cashier by code. The PIN is write-only; its hash is never part of the resource."""

    stores = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Store.objects.all(),
        many=True,
        help_text="Codes of the (active) stores the cashier works in.",
    )
    pin = PinField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        max_length=64,
        style={"input_type": "password"},
        help_text="4 to 8 digits. Required when creating; when changing, send it only to set a "
        "new PIN. Never returned.",
    )

    class Meta:
        model = Cashier
        fields = ["code", "name", "role", "active", "stores", "pin", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is None:
            self.fields["pin"].required = True

    def validate_pin(self, value: str) -> str:
        errors = cashier_pin_errors(value)
        if errors:
            raise serializers.ValidationError(errors, code="invalid_pin")
        return value
