from __future__ import annotations

import datetime as dt
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from erp.api.views import ReadViewSet, ServiceViewSet, bulk_upsert
from inventory import selectors, services
from inventory.api import filters
from inventory.api.serializers import (
    BulkResultSerializer,
    CurrencySerializer,
    PriceBulkRowSerializer,
    PriceListSerializer,
    PriceSerializer,
    ProductBulkRowSerializer,
    ProductSerializer,
    StockLocationSerializer,
    TaxRateSerializer,
)
from inventory.models import Currency, Price, PriceList


class CurrencyViewSet(ReadViewSet):
    """ISO 4217 currencies and their minor units (read-only)."""

    serializer_class = CurrencySerializer
    lookup_field = "code"
    queryset = Currency.objects.none()
    pagination_class = None

    def get_queryset(self):
        return selectors.currency_list()


class TaxRateViewSet(ServiceViewSet):
    serializer_class = TaxRateSerializer
    lookup_field = "code"
    filterset_class = filters.TaxRateFilter
    ordering_fields = ["code", "rate"]

    def get_queryset(self):
        return selectors.tax_rate_list()

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return services.tax_rate_create(actor=self.request.user, reason="api", **data)

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return services.tax_rate_update(
            tax_rate=instance, actor=self.request.user, changes=data, reason="api"
        )

    def perform_service_destroy(self, instance: Any) -> Any:
        services.tax_rate_delete(tax_rate=instance, actor=self.request.user, reason="api")


class ProductViewSet(ServiceViewSet):
    """Products by SKU. Removing a product that was used deactivates it (answer ``200``)."""

    serializer_class = ProductSerializer
    lookup_field = "sku"
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
    filterset_class = filters.ProductFilter
    ordering_fields = ["sku", "name", "updated_at"]
    required_permissions = {"bulk": ["inventory.add_product", "inventory.change_product"]}

    def get_queryset(self):
        return selectors.product_list()

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        barcodes = data.pop("barcodes", ())
        return services.product_create(
            actor=self.request.user, barcodes=barcodes, reason="api", **data
        )

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        barcodes = data.pop("barcodes", None)
        return services.product_update(
            product=instance,
            actor=self.request.user,
            changes=data,
            barcodes=barcodes,
            reason="api",
        )

    def perform_service_destroy(self, instance: Any) -> Any:
        deleted = services.product_delete(product=instance, actor=self.request.user, reason="api")
        return None if deleted else instance

    @extend_schema(
        request=ProductBulkRowSerializer(many=True),
        responses={200: BulkResultSerializer},
        summary="Create or update up to 10,000 products, all or nothing",
    )
    def bulk(self, request: Request) -> Response:
        result = bulk_upsert(
            request,
            ProductBulkRowSerializer,
            lambda rows: services.products_bulk_upsert(actor=request.user, rows=rows),
        )
        return Response(BulkResultSerializer(result).data)


class PriceListViewSet(ServiceViewSet):
    serializer_class = PriceListSerializer
    lookup_field = "code"
    ordering_fields = ["code"]
    filterset_fields = ["active", "currency"]

    def get_queryset(self):
        return selectors.price_list_list()

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return services.price_list_create(actor=self.request.user, reason="api", **data)

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return services.price_list_update(
            price_list=instance, actor=self.request.user, changes=data, reason="api"
        )

    def perform_service_destroy(self, instance: Any) -> Any:
        services.price_list_delete(price_list=instance, actor=self.request.user, reason="api")


_PRICE_PATH = [
    OpenApiParameter("price_list_code", OpenApiTypes.STR, OpenApiParameter.PATH),
]
_PRICE_KEY = [
    OpenApiParameter("sku", OpenApiTypes.STR, OpenApiParameter.PATH),
    OpenApiParameter("valid_from", OpenApiTypes.DATE, OpenApiParameter.PATH),
]


@extend_schema_view(
    list=extend_schema(parameters=_PRICE_PATH),
    create=extend_schema(parameters=_PRICE_PATH),
    retrieve=extend_schema(parameters=_PRICE_PATH + _PRICE_KEY),
    update=extend_schema(parameters=_PRICE_PATH + _PRICE_KEY),
    partial_update=extend_schema(parameters=_PRICE_PATH + _PRICE_KEY),
    destroy=extend_schema(parameters=_PRICE_PATH + _PRICE_KEY),
)
class PriceViewSet(ServiceViewSet):
    """Prices of one list, addressed by ``sku`` and ``valid_from``."""

    serializer_class = PriceSerializer
    filterset_class = filters.PriceFilter
    ordering_fields = ["valid_from"]
    queryset = Price.objects.none()
    required_permissions = {"bulk": ["inventory.add_price", "inventory.change_price"]}

    def price_list(self) -> PriceList:
        if not hasattr(self, "_price_list"):
            self._price_list = get_object_or_404(
                selectors.price_list_list(), code=self.kwargs["price_list_code"]
            )
        return self._price_list

    def permission_model(self) -> type[Price]:
        return Price

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Price.objects.none()
        return selectors.price_list_prices(price_list=self.price_list())

    def get_object(self) -> Price:
        try:
            valid_from = dt.date.fromisoformat(self.kwargs["valid_from"])
        except ValueError as exc:
            raise NotFound("valid_from in the path is a date, YYYY-MM-DD.") from exc
        price = (
            self.get_queryset()
            .filter(product__sku=self.kwargs["sku"], valid_from=valid_from)
            .first()
        )
        if price is None:
            raise NotFound(f"No price for {self.kwargs['sku']} from {valid_from} in this list.")
        self.check_object_permissions(self.request, price)
        return price

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return services.price_create(
            actor=self.request.user, price_list=self.price_list(), reason="api", **data
        )

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return services.price_update(
            price=instance, actor=self.request.user, changes=data, reason="api"
        )

    def perform_service_destroy(self, instance: Any) -> Any:
        services.price_delete(price=instance, actor=self.request.user, reason="api")

    @extend_schema(
        parameters=_PRICE_PATH,
        request=PriceBulkRowSerializer(many=True),
        responses={200: BulkResultSerializer},
        summary="Create or update up to 10,000 prices of this list, all or nothing",
    )
    def bulk(self, request: Request, price_list_code: str) -> Response:
        price_list = self.price_list()
        result = bulk_upsert(
            request,
            PriceBulkRowSerializer,
            lambda rows: services.prices_bulk_upsert(
                actor=request.user, price_list=price_list, rows=rows
            ),
        )
        return Response(BulkResultSerializer(result).data)


class StockLocationViewSet(ServiceViewSet):
    serializer_class = StockLocationSerializer
    lookup_field = "code"
    filterset_class = filters.StockLocationFilter
    ordering_fields = ["code"]

    def get_queryset(self):
        return selectors.stock_location_list()

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return services.stock_location_create(actor=self.request.user, reason="api", **data)

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return services.stock_location_update(
            location=instance, actor=self.request.user, changes=data, reason="api"
        )

    def perform_service_destroy(self, instance: Any) -> Any:
        services.stock_location_delete(location=instance, actor=self.request.user, reason="api")
