"""``/till/api/v1/``: routed only on a store node (``ERP_ROLE=node``, see ``erp/urls.py``)."""

from django.urls import path

from stores.till.api import views

app_name = "till-api"

urlpatterns = [
    path("status", views.StatusView.as_view(), name="status"),
    path("sessions", views.SessionsView.as_view(), name="sessions"),
    path("sessions/current", views.SessionCurrentView.as_view(), name="session-current"),
    path("sessions/<str:session_id>/close", views.SessionCloseView.as_view(), name="session-close"),
    path("baskets", views.BasketsView.as_view(), name="baskets"),
    path("baskets/<str:basket_id>", views.BasketView.as_view(), name="basket"),
    path("baskets/<str:basket_id>/lines", views.BasketLinesView.as_view(), name="lines"),
    path(
        "baskets/<str:basket_id>/lines/<int:line_no>", views.BasketLineView.as_view(), name="line"
    ),
    path(
        "baskets/<str:basket_id>/lines/<int:line_no>/override",
        views.BasketLineOverrideView.as_view(),
        name="line-override",
    ),
    path("baskets/<str:basket_id>/discount", views.BasketDiscountView.as_view(), name="discount"),
    path("baskets/<str:basket_id>/tenders", views.BasketTendersView.as_view(), name="tenders"),
    path("baskets/<str:basket_id>/complete", views.BasketCompleteView.as_view(), name="complete"),
    path("returns", views.ReturnsView.as_view(), name="returns"),
    path("receipts/<str:receipt_no>", views.ReceiptView.as_view(), name="receipt"),
    path("receipts/<str:receipt_no>/reprint", views.ReprintView.as_view(), name="reprint"),
    path("cash-movements", views.CashMovementsView.as_view(), name="cash-movements"),
    path("stock-adjustments", views.StockAdjustmentsView.as_view(), name="stock-adjustments"),
    path("stock-counts", views.StockCountsView.as_view(), name="stock-counts"),
]
