"""``/api/v1/exceptions/``: reconciliation exceptions, read and resolved by head-office users.

Reading needs ``sync.view_reconciliationexception``; acknowledging and resolving need
``sync.change_reconciliationexception`` and go through ``sync.exception_services``.
"""

from __future__ import annotations

import django_filters as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from erp.api.serializers import StrictSerializer
from erp.api.views import ReadViewSet
from sync import exception_services, selectors
from sync.api.views import _ERROR
from sync.models import ReconciliationException

_CHANGE = ["sync.change_reconciliationexception"]


class ReconciliationExceptionSerializer(serializers.ModelSerializer):
    store = serializers.CharField(source="store.code", read_only=True)
    register = serializers.CharField(source="register.code", read_only=True, default=None)
    resolved_by = serializers.CharField(source="resolved_by.username", read_only=True, default=None)
    details = serializers.JSONField(read_only=True)

    class Meta:
        model = ReconciliationException
        fields = [
            "id",
            "type",
            "severity",
            "status",
            "store",
            "register",
            "business_date",
            "event_id",
            "message",
            "details",
            "created_at",
            "updated_at",
            "resolved_at",
            "resolved_by",
            "resolution_note",
        ]
        read_only_fields = fields


class ResolveSerializer(StrictSerializer):
    note = serializers.CharField(max_length=2000, help_text="What was done about it.")


class ReconciliationExceptionFilter(filters.FilterSet):
    store = filters.CharFilter(field_name="store__code", label="Store code")
    register = filters.CharFilter(field_name="register__code", label="Register code")
    business_date = filters.DateFilter()
    business_date_after = filters.DateFilter(field_name="business_date", lookup_expr="gte")
    business_date_before = filters.DateFilter(field_name="business_date", lookup_expr="lte")

    class Meta:
        model = ReconciliationException
        fields = ["type", "status", "severity"]


class ReconciliationExceptionViewSet(ReadViewSet):
    """Problems found in what stores sent, for a person to acknowledge and resolve."""

    serializer_class = ReconciliationExceptionSerializer
    filterset_class = ReconciliationExceptionFilter
    ordering_fields = ["created_at", "updated_at", "business_date"]
    required_permissions = {"resolve": _CHANGE, "acknowledge": _CHANGE}

    def get_queryset(self):
        return selectors.exception_list()

    def _answer(self, exception: ReconciliationException) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=exception.pk)).data)

    @extend_schema(
        request=ResolveSerializer,
        responses={
            200: ReconciliationExceptionSerializer,
            400: OpenApiResponse(_ERROR, description="validation_failed (no note)"),
            409: OpenApiResponse(_ERROR, description="conflict (already resolved)"),
        },
        summary="Resolve an exception with a note",
    )
    def resolve(self, request: Request, pk: str) -> Response:
        serializer = ResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        exception = exception_services.exception_resolve(
            exception=self.get_object(),
            actor=request.user,
            note=serializer.validated_data["note"],
        )
        return self._answer(exception)

    @extend_schema(
        request=None,
        responses={
            200: ReconciliationExceptionSerializer,
            409: OpenApiResponse(_ERROR, description="conflict (already resolved)"),
        },
        summary="Acknowledge an exception (someone is on it)",
    )
    def acknowledge(self, request: Request, pk: str) -> Response:
        exception = exception_services.exception_acknowledge(
            exception=self.get_object(), actor=request.user
        )
        return self._answer(exception)
