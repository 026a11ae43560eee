"""Routes of the books under ``/api/v1/`` (included by ``erp.api.urls``)."""

from django.urls import path

from books.api.views import (
    DailySalesView,
    JobViewSet,
    PeriodViewSet,
    StockValuationView,
    TrialBalanceView,
)

urlpatterns = [
    path("periods/", PeriodViewSet.as_view({"get": "list"}), name="period-list"),
    path(
        "periods/<str:code>/",
        PeriodViewSet.as_view({"get": "retrieve"}),
        name="period-detail",
    ),
    path("periods/<str:code>/close", PeriodViewSet.as_view({"post": "close"}), name="period-close"),
    path("jobs/", JobViewSet.as_view({"get": "list"}), name="job-list"),
    path("jobs/<uuid:pk>", JobViewSet.as_view({"get": "retrieve"}), name="job-detail"),
    path("reports/daily-sales", DailySalesView.as_view(), name="report-daily-sales"),
    path("reports/trial-balance", TrialBalanceView.as_view(), name="report-trial-balance"),
    path("reports/stock-valuation", StockValuationView.as_view(), name="report-stock-valuation"),
]
