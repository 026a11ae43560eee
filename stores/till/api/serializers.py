"""Request bodies of the till API (validated strictly: unknown fields are refused) and the
shapes of its answers, for the node's OpenAPI schema. Amounts and quantities are decimal
strings; the services check their values (decimals of the currency, signs, limits)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from erp.api.serializers import StrictSerializer


class DecimalText(serializers.CharField):
    """A decimal as a string; a JSON number is refused (it may be a float)."""

    default_error_messages = {"not_a_string": 'Send decimals as strings, for example "12.50".'}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 24)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class EmptyIn(StrictSerializer):
    pass


class SupervisorFields(StrictSerializer):
    supervisor = serializers.CharField(required=False, allow_blank=True, max_length=32)
    supervisor_pin = serializers.CharField(required=False, allow_blank=True, max_length=32)


class SessionOpenIn(StrictSerializer):
    opening_float = DecimalText()


class SessionCloseIn(StrictSerializer):
    counted_cash = DecimalText()


class LineAddIn(SupervisorFields):
    code = serializers.CharField(
        max_length=64,
        help_text="A barcode (EAN-13/8, UPC-A, an "
        "in-store 20–29 EAN-13 with weight or price) or a SKU.",
    )
    qty = DecimalText(required=False, allow_null=True, help_text="Units, or kg when weighed.")


class LineChangeIn(StrictSerializer):
    qty = DecimalText()


class LineRemoveIn(SupervisorFields):
    pass


class OverrideIn(SupervisorFields):
    unit_price = DecimalText(required=False)
    discount = DecimalText(required=False, help_text="An amount off the line.")
    reason = serializers.CharField(max_length=200)


class BasketDiscountIn(SupervisorFields):
    amount = DecimalText(required=False)
    percent = DecimalText(required=False)
    reason = serializers.CharField(max_length=200)


class TenderIn(SupervisorFields):
    method = serializers.ChoiceField(choices=["cash", "card", "voucher"])
    amount = DecimalText(required=False, help_text="Defaults to what is due.")
    reference = serializers.CharField(required=False, allow_blank=True, max_length=120)


class VoidIn(SupervisorFields):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class ReturnLineIn(StrictSerializer):
    original_line_no = serializers.IntegerField(required=False, min_value=1)
    code = serializers.CharField(required=False, max_length=64)
    qty = DecimalText(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "original_line_no" not in attrs and "code" not in attrs:
            raise serializers.ValidationError("Give original_line_no or code.")
        return attrs


class RefundIn(StrictSerializer):
    method = serializers.ChoiceField(choices=["cash", "card", "voucher"])
    amount = DecimalText()
    reference = serializers.CharField(required=False, allow_blank=True, max_length=120)


class ReturnIn(SupervisorFields):
    receipt_no = serializers.CharField(required=False, allow_blank=True, max_length=64)
    lines = ReturnLineIn(many=True, allow_empty=False, max_length=1000)
    tenders = RefundIn(many=True, required=False, max_length=50)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)
    repeat_override = serializers.BooleanField(
        required=False,
        help_text="A supervisor returns a SKU again against a receipt this till does not hold "
        "(needs a reason).",
    )


class CashMovementIn(SupervisorFields):
    kind = serializers.ChoiceField(choices=["pay_in", "pay_out", "drop"])
    amount = DecimalText()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class AdjustmentLineIn(StrictSerializer):
    code = serializers.CharField(max_length=64)
    qty_delta = DecimalText()
    reason = serializers.ChoiceField(
        choices=["damage", "theft", "receipt", "transfer_in", "transfer_out", "other"]
    )
    reference = serializers.CharField(required=False, allow_blank=True, max_length=500)


class StockAdjustmentIn(SupervisorFields):
    lines = AdjustmentLineIn(many=True, allow_empty=False, max_length=5000)


class CountLineIn(StrictSerializer):
    code = serializers.CharField(max_length=64)
    counted_qty = DecimalText()


class StockCountIn(StrictSerializer):
    count_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    lines = CountLineIn(many=True, allow_empty=False, max_length=50_000)


class ReprintIn(SupervisorFields):
    pass


# --- answers (documentation) ------------------------------------------------------------------


class TotalsOut(serializers.Serializer):
    net = serializers.CharField()
    tax = serializers.CharField()
    gross = serializers.CharField()


class BasketLineOut(serializers.Serializer):
    line_no = serializers.IntegerField()
    code = serializers.CharField()
    sku = serializers.CharField()
    name = serializers.CharField()
    weighed = serializers.BooleanField()
    qty = serializers.CharField()
    unit_price = serializers.CharField()
    list_price = serializers.CharField()
    discount = serializers.CharField()
    tax_code = serializers.CharField()
    tax = serializers.CharField()
    line_total = serializers.CharField()
    price_override_reason = serializers.CharField(allow_null=True)
    discount_reason = serializers.CharField()
    authorised_by = serializers.CharField()


class TenderOut(serializers.Serializer):
    method = serializers.CharField()
    amount = serializers.CharField()
    change = serializers.CharField()
    reference = serializers.CharField(allow_null=True)
    offline_authorized = serializers.BooleanField()


class BasketOut(serializers.Serializer):
    basket_id = serializers.UUIDField()
    status = serializers.CharField()
    session_id = serializers.CharField()
    cashier = serializers.CharField()
    currency = serializers.CharField()
    lines = BasketLineOut(many=True)
    discount = serializers.DictField(allow_null=True)
    tenders = TenderOut(many=True)
    totals = TotalsOut()
    paid = serializers.CharField()
    due = serializers.CharField()
    change = serializers.CharField()


class CompletedOut(serializers.Serializer):
    event_id = serializers.UUIDField()
    seq = serializers.IntegerField()
    type = serializers.CharField()
    receipt_no = serializers.CharField()
    totals = TotalsOut()
    tenders = TenderOut(many=True)
    lines = serializers.ListField(child=serializers.DictField())
    receipt_text = serializers.CharField()
    original_receipt_no = serializers.CharField(allow_null=True)
    returned = serializers.DictField()


class SessionOut(serializers.Serializer):
    session_id = serializers.CharField()
    cashier = serializers.CharField()
    opening_float = serializers.CharField()
    opened_at = serializers.DateTimeField()
    business_date = serializers.DateField()
    open_seq = serializers.IntegerField()
    closed_at = serializers.DateTimeField(allow_null=True)
    z_report = serializers.DictField(allow_null=True)


class CloseOut(serializers.Serializer):
    z_report = serializers.DictField()
    session = SessionOut()


class EventOut(serializers.Serializer):
    event_id = serializers.UUIDField()
    seq = serializers.IntegerField()
    type = serializers.CharField()


class DeviceOut(serializers.Serializer):
    device = serializers.CharField()
    kind = serializers.CharField()
    state = serializers.CharField()
    detail = serializers.CharField()


class AttentionOut(serializers.Serializer):
    kind = serializers.CharField()
    message = serializers.CharField()
    event_id = serializers.CharField(required=False)


class StatusOut(serializers.Serializer):
    online = serializers.BooleanField()
    outbox_depth = serializers.IntegerField()
    oldest_unsent_age_s = serializers.FloatField(allow_null=True)
    last_sync_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    high_water = serializers.DictField(child=serializers.IntegerField())
    store = serializers.CharField(allow_null=True)
    register = serializers.CharField(allow_null=True)
    session_id = serializers.CharField(allow_null=True)
    devices = DeviceOut(many=True)
    attention = AttentionOut(many=True)
    server_time = serializers.DateTimeField()
