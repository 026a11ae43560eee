from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from erp.errors import ApplicationError, PayloadTooLarge
from sync import selectors
from sync.api.auth import IsNode, NodeKeyAuthentication, NodeRateThrottle
from sync.push.service import batch_push

_ERROR = inline_serializer(
    "ErrorBody",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.JSONField(allow_null=True),
            },
        )
    },
)
_RESULTS = inline_serializer(
    "PushEventResult",
    {
        "event_id": serializers.CharField(allow_null=True),
        "status": serializers.ChoiceField(
            ["accepted", "duplicate", "held", "conflict", "rejected"]
        ),
        "code": serializers.CharField(required=False),
        "message": serializers.CharField(required=False),
    },
    many=True,
)


class UnsupportedMediaType(ApplicationError):
    status = 415
    code = "unsupported_media_type"


class NodeView(APIView):
    authentication_classes = [NodeKeyAuthentication]
    permission_classes = [IsNode]
    throttle_classes = [NodeRateThrottle]


class PushView(NodeView):
    """Sync protocol v1 push: a batch of store events, applied exactly once."""

    parser_classes: list = []

    @extend_schema(
        operation_id="sync_push",
        request=inline_serializer(
            "PushBatch",
            {
                "batch_id": serializers.UUIDField(),
                "node_time": serializers.DateTimeField(required=False),
                "events": serializers.ListField(child=serializers.JSONField()),
            },
        ),
        responses={
            200: inline_serializer(
                "PushResponse",
                {
                    "batch_id": serializers.UUIDField(),
                    "results": _RESULTS,
                    "high_water": serializers.DictField(child=serializers.IntegerField()),
                    "server_time": serializers.DateTimeField(),
                },
            ),
            **{
                status: OpenApiResponse(_ERROR, description=code)
                for status, code in (
                    (400, "malformed_json, invalid_batch"),
                    (401, "unauthenticated"),
                    (403, "forbidden_register"),
                    (409, "batch_in_progress"),
                    (413, "batch_too_large"),
                    (415, "unsupported_media_type"),
                    (422, "batch_id_reused"),
                    (429, "throttled"),
                )
            },
        },
    )
    def post(self, request: Request) -> HttpResponse:
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type != "application/json":
            raise UnsupportedMediaType(f"Send the batch as application/json, not {content_type!r}.")
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > settings.SYNC_MAX_BYTES:
            raise PayloadTooLarge(
                f"The batch is {declared} bytes; at most {settings.SYNC_MAX_BYTES} are accepted.",
                code="batch_too_large",
            )
        body = request._request.read(settings.SYNC_MAX_BYTES + 1)
        result = batch_push(node_key=request.auth, body=body)
        return HttpResponse(result.body, content_type="application/json")


class StatusView(NodeView):
    """What head office holds for this store, per register."""

    @extend_schema(
        operation_id="sync_status",
        responses={
            200: inline_serializer(
                "SyncStatus",
                {
                    "server_time": serializers.DateTimeField(),
                    "store": serializers.CharField(),
                    "registers": serializers.DictField(child=serializers.JSONField()),
                    "node": serializers.JSONField(),
                },
            ),
            401: _ERROR,
            429: _ERROR,
        },
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.sync_status(node_key=request.auth))
