"""The HQ API, v1. Resources are addressed by business keys."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from inventory.api.views import (
    CurrencyViewSet,
    PriceListViewSet,
    PriceViewSet,
    ProductViewSet,
    StockLocationViewSet,
    TaxRateViewSet,
)
from stores.api.sales import SaleViewSet
from stores.api.stock import StockViewSet
from stores.api.views import CashierViewSet, NodeKeyViewSet, RegisterViewSet, StoreViewSet
from sync.api.reconciliation import ReconciliationExceptionViewSet


class Router(SimpleRouter):
    include_format_suffixes = False


router = Router(trailing_slash=True)
router.register("currencies", CurrencyViewSet, basename="currency")
router.register("tax-rates", TaxRateViewSet, basename="tax-rate")
router.register("products", ProductViewSet, basename="product")
router.register("price-lists", PriceListViewSet, basename="price-list")
router.register("stock-locations", StockLocationViewSet, basename="stock-location")
router.register("stores", StoreViewSet, basename="store")
router.register("cashiers", CashierViewSet, basename="cashier")
router.register("sales", SaleViewSet, basename="sale")
router.register("stock", StockViewSet, basename="stock")
router.register("exceptions", ReconciliationExceptionViewSet, basename="exception")

registers = Router(trailing_slash=True)
registers.register("registers", RegisterViewSet, basename="register")
registers.register("node-keys", NodeKeyViewSet, basename="node-key")

price_detail = PriceViewSet.as_view(
    {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
)

urlpatterns = [
    path("sync/", include("sync.api.urls")),
    path("products/bulk", ProductViewSet.as_view({"post": "bulk"}), name="product-bulk"),
    path(
        "price-lists/<str:price_list_code>/prices/bulk",
        PriceViewSet.as_view({"post": "bulk"}),
        name="price-bulk",
    ),
    path(
        "price-lists/<str:price_list_code>/prices/",
        PriceViewSet.as_view({"get": "list", "post": "create"}),
        name="price-list",
    ),
    path(
        "price-lists/<str:price_list_code>/prices/<str:sku>/<str:valid_from>/",
        price_detail,
        name="price-detail",
    ),
    path("stores/<str:store_code>/", include(registers.urls)),
    path(
        "exceptions/<int:pk>/resolve",
        ReconciliationExceptionViewSet.as_view({"post": "resolve"}),
        name="exception-resolve",
    ),
    path(
        "exceptions/<int:pk>/acknowledge",
        ReconciliationExceptionViewSet.as_view({"post": "acknowledge"}),
        name="exception-acknowledge",
    ),
    path("", include(router.urls)),
]
