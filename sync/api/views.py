from __future__ import annotations

import hashlib

import msgspec
from django.conf import settings
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from erp.errors import ApplicationError, PayloadTooLarge, ValidationFailed
from sync import selectors
from sync.api.auth import IsNode, NodeKeyAuthentication, NodeRateThrottle
from sync.feed.pull import DEFAULT_LIMIT, MAX_LIMIT, changes_pull, pull_record
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


_CHANGE = inline_serializer(
    "FeedChange",
    {
        "entity": serializers.ChoiceField(
            ["product", "price", "tax_rate", "store_config", "register", "cashier"]
        ),
        "key": serializers.CharField(),
        "op": serializers.ChoiceField(["upsert", "delete"]),
        "version": serializers.IntegerField(),
        "data": serializers.JSONField(allow_null=True),
    },
    many=True,
)


class PullView(NodeView):
    """Sync protocol v1 pull: the master-data changes this store may see, oldest first.

    Start with no cursor (the current state), then follow ``cursor`` until ``has_more`` is
    false, and keep the last cursor for the next poll. An unchanged answer is ``304`` when the
    request carries the previous answer's ``ETag`` in ``If-None-Match``.
    """

    @extend_schema(
        operation_id="sync_pull",
        parameters=[
            OpenApiParameter("cursor", str, description="The cursor of the previous answer."),
            OpenApiParameter(
                "limit",
                int,
                description=f"Changes per page, {DEFAULT_LIMIT} by default, at most {MAX_LIMIT}.",
            ),
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER),
        ],
        responses={
            200: inline_serializer(
                "PullResponse",
                {
                    "changes": _CHANGE,
                    "cursor": serializers.CharField(),
                    "has_more": serializers.BooleanField(),
                },
            ),
            304: OpenApiResponse(description="Nothing changed since the answer with this ETag."),
            **{
                status: OpenApiResponse(_ERROR, description=code)
                for status, code in (
                    (400, "invalid_cursor, validation_failed"),
                    (401, "unauthenticated"),
                    (429, "throttled"),
                )
            },
        },
    )
    def get(self, request: Request) -> HttpResponse:
        limit = _limit(request.query_params.get("limit"))
        cursor = request.query_params.get("cursor") or None
        page = changes_pull(store_id=request.auth.store_id, cursor=cursor, limit=limit)
        pull_record(node_key=request.auth, complete=not page.has_more)
        body = msgspec.json.encode(
            {"changes": page.changes, "cursor": page.cursor, "has_more": page.has_more}
        )
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        wanted = parse_etags(request.headers.get("If-None-Match", ""))
        if etag in wanted or "*" in wanted:
            response: HttpResponse = HttpResponseNotModified(headers=headers)
        else:
            response = HttpResponse(body, content_type="application/json", headers=headers)
        return response


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationFailed(
            f"limit is a whole number from 1 to {MAX_LIMIT}.",
            details={"limit": [f"Give a whole number from 1 to {MAX_LIMIT}."]},
        )
    return int(raw)
