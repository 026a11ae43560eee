"""The till API, v1 (``../shared/design/till-api.md``): thin views that parse with a strict
serializer, call one till service or selector, and answer JSON. Errors are the sync
protocol's error body (``erp.api.errors.exception_handler``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from stores.local import LocalCashier
from stores.till import selectors, services
from stores.till.api import schema as _schema  # noqa: F401 - registers the auth schemes
from stores.till.api import serializers as s
from stores.till.api.authentication import (
    CashierHeaderAuthentication,
    CashierSessionAuthentication,
    IsCashier,
)
from stores.till.errors import ReceiptNotFound, SessionNotFound

TAGS = ["till"]
ERRORS = {
    400: OpenApiResponse(description="validation_failed, unknown_field, invalid_qty, …"),
    401: OpenApiResponse(description="unauthenticated: no or a wrong cashier code / PIN"),
    403: OpenApiResponse(description="supervisor_required / supervisor_refused"),
    429: OpenApiResponse(description="pin_locked: too many wrong PINs for a code; Retry-After"),
    404: OpenApiResponse(description="basket_not_found, unknown_code, receipt_not_found, …"),
    409: OpenApiResponse(description="no_open_session, basket_closed, basket_not_paid, …"),
}


class TillView(APIView):
    authentication_classes = [CashierHeaderAuthentication, CashierSessionAuthentication]
    permission_classes = [IsCashier]
    # A local API: the till must never be told "later". Guessing PINs is limited per cashier
    # code instead (``stores.till.auth``: pin_locked).
    throttle_classes: list[Any] = []

    @property
    def cashier(self) -> LocalCashier:
        return self.request.user.cashier  # type: ignore[union-attr]

    def body(self, serializer: type[Serializer]) -> dict[str, Any]:
        data = self.request.data if self.request.data is not None else {}
        parsed = serializer(data=data)
        parsed.is_valid(raise_exception=True)
        return dict(parsed.validated_data)


def _basket(basket: Any, code: int = 200) -> Response:
    return Response(selectors.basket_view(basket), status=code)


class SessionsView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.SessionOpenIn,
        responses={201: s.SessionOut, **ERRORS},
        summary="Open a session (a cashier's shift on this register)",
    )
    def post(self, request: Request) -> Response:
        data = self.body(s.SessionOpenIn)
        session = services.session_open(cashier=self.cashier, opening_float=data["opening_float"])
        return Response(selectors.session_view(session), status=201)


class SessionCurrentView(TillView):
    @extend_schema(
        tags=TAGS,
        responses={200: s.SessionOut, **ERRORS},
        summary="The session open on this register",
    )
    def get(self, request: Request) -> Response:
        session = services.session_current()
        if session is None:
            raise SessionNotFound("No session is open on this register.")
        return Response(selectors.session_view(session))


class SessionCloseView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.SessionCloseIn,
        responses={200: s.CloseOut, **ERRORS},
        summary="Close a session: the Z-report, counted cash and over/short",
    )
    def post(self, request: Request, session_id: str) -> Response:
        data = self.body(s.SessionCloseIn)
        session = services.session_close(
            cashier=self.cashier, session_id=session_id, counted_cash=data["counted_cash"]
        )
        return Response({"z_report": session.z_report, "session": selectors.session_view(session)})


class BasketsView(TillView):
    @extend_schema(
        tags=TAGS, request=None, responses={201: s.BasketOut, **ERRORS}, summary="Start a basket"
    )
    def post(self, request: Request) -> Response:
        self.body(s.EmptyIn)  # refuses unknown fields
        return _basket(services.basket_start(cashier=self.cashier), 201)


class BasketView(TillView):
    @extend_schema(tags=TAGS, responses={200: s.BasketOut, **ERRORS}, summary="A basket")
    def get(self, request: Request, basket_id: str) -> Response:
        return _basket(selectors.basket_get(basket_id))

    @extend_schema(
        tags=TAGS, request=s.VoidIn, responses={204: None, **ERRORS}, summary="Void an open basket"
    )
    def delete(self, request: Request, basket_id: str) -> Response:
        data = self.body(s.VoidIn)
        services.basket_void(cashier=self.cashier, basket_id=basket_id, **data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BasketLinesView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.LineAddIn,
        responses={201: s.BasketOut, **ERRORS},
        summary="Add a line by barcode or SKU",
    )
    def post(self, request: Request, basket_id: str) -> Response:
        data = self.body(s.LineAddIn)
        basket = services.basket_line_add(cashier=self.cashier, basket_id=basket_id, **data)
        return _basket(basket, 201)


class BasketLineView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.LineChangeIn,
        responses={200: s.BasketOut, **ERRORS},
        summary="Change a line's quantity",
    )
    def patch(self, request: Request, basket_id: str, line_no: int) -> Response:
        data = self.body(s.LineChangeIn)
        basket = services.basket_line_change(
            cashier=self.cashier, basket_id=basket_id, line_no=line_no, qty=data["qty"]
        )
        return _basket(basket)

    @extend_schema(
        tags=TAGS,
        request=s.LineRemoveIn,
        responses={200: s.BasketOut, **ERRORS},
        summary="Remove a line",
    )
    def delete(self, request: Request, basket_id: str, line_no: int) -> Response:
        data = self.body(s.LineRemoveIn)
        basket = services.basket_line_remove(
            cashier=self.cashier, basket_id=basket_id, line_no=line_no, **data
        )
        return _basket(basket)


class BasketLineOverrideView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.OverrideIn,
        responses={200: s.BasketOut, **ERRORS},
        summary="Override a line's price or discount it (reason, supervisor)",
    )
    def post(self, request: Request, basket_id: str, line_no: int) -> Response:
        data = self.body(s.OverrideIn)
        basket = services.basket_line_override(
            cashier=self.cashier, basket_id=basket_id, line_no=line_no, **data
        )
        return _basket(basket)


class BasketDiscountView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.BasketDiscountIn,
        responses={200: s.BasketOut, **ERRORS},
        summary="Discount the whole basket (amount or percent; spread over lines)",
    )
    def post(self, request: Request, basket_id: str) -> Response:
        data = self.body(s.BasketDiscountIn)
        basket = services.basket_discount_set(cashier=self.cashier, basket_id=basket_id, **data)
        return _basket(basket)


class BasketTendersView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.TenderIn,
        responses={
            201: s.BasketOut,
            402: OpenApiResponse(description="card_declined, card_offline_limit"),
            **ERRORS,
        },
        summary="Add a tender: cash (with change), card (terminal; offline up to the store's "
        "limit) or voucher",
    )
    def post(self, request: Request, basket_id: str) -> Response:
        data = self.body(s.TenderIn)
        basket = services.basket_tender_add(cashier=self.cashier, basket_id=basket_id, **data)
        return _basket(basket, 201)


class BasketCompleteView(TillView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={201: s.CompletedOut, **ERRORS},
        summary="Complete a paid basket: the sale, its event and its receipt",
    )
    def post(self, request: Request, basket_id: str) -> Response:
        receipt = services.basket_complete(cashier=self.cashier, basket_id=basket_id)
        return Response(selectors.receipt_view(receipt), status=201)


class ReturnsView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.ReturnIn,
        responses={201: s.CompletedOut, **ERRORS},
        summary="A return, by receipt number or without receipt (supervisor)",
    )
    def post(self, request: Request) -> Response:
        data = self.body(s.ReturnIn)
        receipt = services.return_create(cashier=self.cashier, **data)
        return Response(selectors.receipt_view(receipt), status=201)


class ReceiptView(TillView):
    @extend_schema(
        tags=TAGS,
        responses={200: s.CompletedOut, **ERRORS},
        summary="A receipt this till holds (for returns and reprints)",
    )
    def get(self, request: Request, receipt_no: str) -> Response:
        receipt = selectors.receipt_get(receipt_no)
        if receipt is None:
            raise ReceiptNotFound(f"This till holds no receipt {receipt_no}.")
        return Response(selectors.receipt_view(receipt))


class ReprintView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.ReprintIn,
        responses={202: s.CompletedOut, **ERRORS},
        summary="Print a receipt again (marked as a copy)",
    )
    def post(self, request: Request, receipt_no: str) -> Response:
        data = self.body(s.ReprintIn)
        receipt = services.receipt_reprint(cashier=self.cashier, receipt_no=receipt_no, **data)
        return Response(selectors.receipt_view(receipt), status=202)


class CashMovementsView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.CashMovementIn,
        responses={201: s.EventOut, **ERRORS},
        summary="Pay-in, pay-out or drop",
    )
    def post(self, request: Request) -> Response:
        data = self.body(s.CashMovementIn)
        movement = services.cash_movement_create(cashier=self.cashier, **data)
        return Response(
            {
                "event_id": str(movement.event_id),
                "seq": movement.seq,
                "type": "cash_movement",
                "kind": movement.kind,
                "amount": str(movement.amount),
            },
            status=201,
        )


def _event(event: Any) -> Response:
    return Response(
        {"event_id": str(event.event_id), "seq": event.seq, "type": event.type}, status=201
    )


class StockAdjustmentsView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.StockAdjustmentIn,
        responses={201: s.EventOut, **ERRORS},
        summary="Stock adjustment (damage, theft, receipt, transfers)",
    )
    def post(self, request: Request) -> Response:
        data = self.body(s.StockAdjustmentIn)
        return _event(services.stock_adjustment_create(cashier=self.cashier, **data))


class StockCountsView(TillView):
    @extend_schema(
        tags=TAGS,
        request=s.StockCountIn,
        responses={201: s.EventOut, **ERRORS},
        summary="Stock count (full or partial)",
    )
    def post(self, request: Request) -> Response:
        data = self.body(s.StockCountIn)
        return _event(services.stock_count_create(cashier=self.cashier, **data))


class StatusView(TillView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=TAGS,
        responses={200: s.StatusOut},
        summary="The node's state: link, outbox, devices, attention",
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.till_status())
