"""The books in the HQ API: periods and their close, jobs, and the reports.

- ``/api/v1/periods/`` (``YYYY-MM``), ``POST /api/v1/periods/{code}/close`` → the job (202);
- ``GET /api/v1/jobs/{id}``: state, step, progress, result;
- ``GET /api/v1/reports/daily-sales?store=&date=``, ``…/trial-balance?period=``,
  ``…/stock-valuation?date=``. Amounts are decimal strings.

Reading needs the books' ``view`` permissions (finance, auditor); closing needs
``books.add_job`` and ``books.change_fiscalperiod`` (finance).
"""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from books import close, selectors
from books.models import FiscalPeriod, Job
from erp.api.serializers import StrictSerializer
from erp.api.views import ReadViewSet
from erp.errors import NotFound, ValidationFailed
from stores.models import Store
from sync.api.views import _ERROR

AMOUNT = {"max_digits": 20, "decimal_places": 4, "coerce_to_string": True}


class PeriodSerializer(serializers.ModelSerializer):
    closed_by = serializers.CharField(source="closed_by.username", read_only=True, default=None)

    class Meta:
        model = FiscalPeriod
        fields = ["code", "start", "end", "status", "closed_at", "closed_by", "override_reason"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    period = serializers.CharField(source="period.code", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    result = serializers.JSONField(read_only=True)

    class Meta:
        model = Job
        fields = [
            "id", "kind", "period", "state", "step", "progress", "message", "result",
            "override_reason", "attempts", "created_by", "created_at", "started_at",
            "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class CloseSerializer(StrictSerializer):
    override_reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        help_text="Why the period may be locked although blocking exceptions are open.",
    )


class PeriodViewSet(ReadViewSet):
    """Fiscal periods (months), open → closing → closed."""

    serializer_class = PeriodSerializer
    lookup_field = "code"
    lookup_value_regex = r"\d{4}-\d{2}"
    filterset_fields = ["status"]
    required_permissions = {"close": ["books.add_job", "books.change_fiscalperiod"]}

    def get_queryset(self):
        return selectors.period_list()

    @extend_schema(
        request=CloseSerializer,
        responses={
            202: JobSerializer,
            404: OpenApiResponse(_ERROR, description="not_found"),
            409: OpenApiResponse(_ERROR, description="period_closed, close_in_progress"),
        },
        summary="Start the close of a period (a job)",
    )
    def close(self, request: Request, code: str) -> Response:
        serializer = CloseSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        period = selectors.period_get(code=code)
        job = close.period_close_start(
            period=period,
            actor=request.user,
            override_reason=serializer.validated_data.get("override_reason", ""),
        )
        job = selectors.job_list().get(pk=job.pk)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobViewSet(ReadViewSet):
    """Long-running jobs (month-end close) with their state and progress."""

    serializer_class = JobSerializer
    filterset_fields = ["state", "kind"]

    def get_queryset(self):
        return selectors.job_list()


# --- reports ------------------------------------------------------------------------------------


class TrialBalanceRowSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    currency = serializers.CharField()
    debit = serializers.DecimalField(**AMOUNT)
    credit = serializers.DecimalField(**AMOUNT)
    balance = serializers.DecimalField(**AMOUNT)


class TrialBalanceSerializer(serializers.Serializer):
    period = serializers.CharField()
    status = serializers.CharField()
    rows = TrialBalanceRowSerializer(many=True)
    debit = serializers.DecimalField(**AMOUNT)
    credit = serializers.DecimalField(**AMOUNT)


class TaxLineSerializer(serializers.Serializer):
    tax_code = serializers.CharField()
    type = serializers.CharField()
    lines = serializers.IntegerField()
    total = serializers.DecimalField(**AMOUNT)


class TenderLineSerializer(serializers.Serializer):
    method = serializers.CharField()
    type = serializers.CharField()
    amount = serializers.DecimalField(**AMOUNT)


class DailySalesSerializer(serializers.Serializer):
    store = serializers.CharField()
    date = serializers.DateField()
    currency = serializers.CharField()
    sales = serializers.IntegerField()
    returns = serializers.IntegerField()
    gross = serializers.DecimalField(**AMOUNT)
    returns_gross = serializers.DecimalField(**AMOUNT)
    tax = serializers.DecimalField(**AMOUNT)
    by_tax_code = TaxLineSerializer(many=True)
    tenders = TenderLineSerializer(many=True)
    entries = serializers.ListField(child=serializers.IntegerField())


class ValuationRowSerializer(serializers.Serializer):
    location = serializers.CharField()
    products = serializers.IntegerField()
    qty = serializers.DecimalField(max_digits=20, decimal_places=3, coerce_to_string=True)
    value = serializers.DecimalField(**AMOUNT)


class StockValuationSerializer(serializers.Serializer):
    date = serializers.DateField()
    locations = ValuationRowSerializer(many=True)


def _date(request: Request, name: str) -> dt.date:
    raw = request.query_params.get(name, "")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed(
            f"Give ?{name}=YYYY-MM-DD.", details={name: ["A date YYYY-MM-DD is required."]}
        ) from exc


class _Report(APIView):
    def permission_model(self):
        from books.models import JournalLine

        return JournalLine


class TrialBalanceView(_Report):
    @extend_schema(
        parameters=[OpenApiParameter("period", str, description="YYYY-MM", required=True)],
        responses={200: TrialBalanceSerializer, 404: OpenApiResponse(_ERROR)},
        summary="Trial balance of a period: debits and credits per account",
    )
    def get(self, request: Request) -> Response:
        code = request.query_params.get("period", "")
        period = selectors.period_get(code=code)
        rows = selectors.trial_balance(period_code=code)
        body = {
            "period": period.code,
            "status": period.status,
            "rows": [{**r.__dict__, "balance": r.balance} for r in rows],
            "debit": sum((r.debit for r in rows), selectors.ZERO),
            "credit": sum((r.credit for r in rows), selectors.ZERO),
        }
        return Response(TrialBalanceSerializer(body).data)


class DailySalesView(_Report):
    @extend_schema(
        parameters=[
            OpenApiParameter("store", str, required=True),
            OpenApiParameter("date", dt.date, required=True),
        ],
        responses={200: DailySalesSerializer, 404: OpenApiResponse(_ERROR)},
        summary="Sales of a store-day: counts, gross, tax per code, tenders, its entries",
    )
    def get(self, request: Request) -> Response:
        store = Store.objects.filter(code=request.query_params.get("store", "")).first()
        if store is None:
            raise NotFound("There is no such store.")
        body = selectors.daily_sales(store=store, day=_date(request, "date"))
        return Response(DailySalesSerializer(body).data)


class StockValuationView(_Report):
    @extend_schema(
        parameters=[OpenApiParameter("date", dt.date, required=True)],
        responses={200: StockValuationSerializer},
        summary="Stock on hand per location at the end of a date, at weighted average cost",
    )
    def get(self, request: Request) -> Response:
        day = _date(request, "date")
        body = {"date": day, "locations": selectors.stock_valuation(day=day)}
        return Response(StockValuationSerializer(body).data)
