from __future__ import annotations

from typing import Any

from rest_framework import serializers

from erp.api.serializers import StrictModelSerializer, StrictSerializer
from inventory.models import Currency, PriceList, StockLocation
from stores.models import NodeKey, Register, Store, validate_timezone


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
            "registers",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_registers(self, obj: Store) -> list[str]:
        return [r.code for r in obj.registers.all()]

    def validate_timezone(self, value: str) -> str:
        return value


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
