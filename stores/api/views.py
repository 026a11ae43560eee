from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from erp.api.views import ReadViewSet, ServiceViewSet
from stores import selectors, services
from stores.api.filters import CashierFilter
from stores.api.serializers import (
    CashierSerializer,
    IssuedNodeKeySerializer,
    NodeKeyIssueSerializer,
    NodeKeySerializer,
    RegisterSerializer,
    StoreSerializer,
)
from stores.models import Cashier, NodeKey, Register, Store


class StoreViewSet(ServiceViewSet):
    serializer_class = StoreSerializer
    lookup_field = "code"
    filterset_fields = ["active", "currency", "timezone"]
    ordering_fields = ["code", "name"]

    def get_queryset(self):
        return selectors.store_list()

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return services.store_create(actor=self.request.user, reason="api", **data)

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return services.store_update(
            store=instance, actor=self.request.user, changes=data, reason="api"
        )

    def perform_service_destroy(self, instance: Any) -> Any:
        services.store_delete(store=instance, actor=self.request.user, reason="api")


_STORE = [OpenApiParameter("store_code", OpenApiTypes.STR, OpenApiParameter.PATH)]


class _InStore:
    """Views nested under ``/stores/{store_code}/``."""

    kwargs: dict[str, Any]

    def store(self) -> Store:
        if not hasattr(self, "_store"):
            self._store = get_object_or_404(Store, code=self.kwargs["store_code"])
        return self._store


@extend_schema_view(
    list=extend_schema(parameters=_STORE),
    create=extend_schema(parameters=_STORE),
    retrieve=extend_schema(parameters=_STORE),
    update=extend_schema(parameters=_STORE),
    partial_update=extend_schema(parameters=_STORE),
    destroy=extend_schema(parameters=_STORE),
)
class RegisterViewSet(_InStore, ServiceViewSet):
    serializer_class = RegisterSerializer
    lookup_field = "code"
    filterset_fields = ["active"]
    queryset = Register.objects.none()

    def permission_model(self) -> type[Register]:
        return Register

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Register.objects.none()
        return selectors.register_list(store=self.store())

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return services.register_create(
            actor=self.request.user, store=self.store(), reason="api", **data
        )

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return services.register_update(
            register=instance, actor=self.request.user, changes=data, reason="api"
        )

    def perform_service_destroy(self, instance: Any) -> Any:
        services.register_delete(register=instance, actor=self.request.user, reason="api")


@extend_schema_view(
    list=extend_schema(parameters=_STORE, summary="The store's node keys (never the keys)"),
    retrieve=extend_schema(parameters=_STORE),
)
class NodeKeyViewSet(_InStore, ReadViewSet):
    """Node keys of one store: issue (the key is in this answer only) and revoke."""

    serializer_class = NodeKeySerializer
    lookup_field = "prefix"
    queryset = NodeKey.objects.none()
    filterset_fields: list[str] = []
    ordering_fields = ["created_at"]

    def permission_model(self) -> type[NodeKey]:
        return NodeKey

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return NodeKey.objects.none()
        return selectors.node_key_list(store=self.store())

    @extend_schema(
        parameters=_STORE,
        request=NodeKeyIssueSerializer,
        responses={201: IssuedNodeKeySerializer},
        summary="Issue a node key; the plain key is returned once and stored nowhere",
    )
    def create(self, request: Request, store_code: str) -> Response:
        serializer = NodeKeyIssueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        node_key, plain = services.node_key_issue(
            actor=request.user, store=self.store(), label=serializer.validated_data["label"]
        )
        node_key.key = plain  # type: ignore[attr-defined]
        return Response(IssuedNodeKeySerializer(node_key).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=_STORE, responses={204: None}, summary="Revoke a node key")
    def destroy(self, request: Request, store_code: str, prefix: str) -> Response:
        node_key = self.get_object()
        services.node_key_revoke(node_key=node_key, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CashierViewSet(ServiceViewSet):
    """Cashiers by code. The PIN is write-only and its hash is never returned; removing a
    cashier that a sale or till session names deactivates them (answer ``200``)."""

    serializer_class = CashierSerializer
    lookup_field = "code"
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
    filterset_class = CashierFilter
    ordering_fields = ["code", "name", "updated_at"]

    def get_queryset(self) -> QuerySet[Cashier]:
        return selectors.cashier_list()

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return services.cashier_create(
            actor=self.request.user,
            code=data.pop("code"),
            name=data.pop("name"),
            role=data.pop("role", Cashier.Role.CASHIER),
            pin=data.pop("pin"),
            stores=data.pop("stores"),
            reason="api",
            **data,
        )

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        pin = data.pop("pin", None)
        stores = data.pop("stores", None)
        return services.cashier_update(
            cashier=instance,
            actor=self.request.user,
            changes=data,
            pin=pin,
            stores=stores,
            reason="api",
        )

    def perform_service_destroy(self, instance: Any) -> Any:
        deleted = services.cashier_delete(cashier=instance, actor=self.request.user, reason="api")
        return None if deleted else instance
