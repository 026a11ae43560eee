"""Base views: resources addressed by business keys, whose writes go through services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from erp.api.errors import plain_errors as _plain
from erp.api.serializers import StrictSerializer
from erp.errors import ApplicationError, PayloadTooLarge, ValidationFailed

T = TypeVar("T")


class ReadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List and read one, by business key."""


class ServiceViewSet(ReadViewSet):
    """CRUD whose writes call ``perform_service_create`` / ``_update`` / ``_destroy``.

    Subclasses implement those three with the app's services. ``write_serializer_class``
    (default: ``serializer_class``) validates input; ``serializer_class`` renders output.
    ``perform_service_destroy`` returns the object when it was deactivated instead of deleted,
    which answers ``200`` with the resource rather than ``204``.
    """

    write_serializer_class: type[BaseSerializer] | None = None

    def get_write_serializer(self, *args: Any, **kwargs: Any) -> BaseSerializer:
        cls = self.write_serializer_class or self.get_serializer_class()
        kwargs.setdefault("context", self.get_serializer_context())
        return cls(*args, **kwargs)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_write_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.perform_service_create(dict(serializer.validated_data))
        instance = self.refetch(instance)
        return Response(self.get_serializer(instance).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        instance = self.get_object()
        serializer = self.get_write_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        instance = self.perform_service_update(instance, dict(serializer.validated_data))
        return Response(self.get_serializer(self.refetch(instance)).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        kept = self.perform_service_destroy(instance)
        if kept is not None:
            return Response(self.get_serializer(self.refetch(kept)).data, status=status.HTTP_200_OK)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def refetch(self, instance: Any) -> Any:
        """Reload through the list queryset, so output has what the selector joins."""
        return self.get_queryset().get(pk=instance.pk)

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        raise ApplicationError("Creating is not supported here.", code="method_not_allowed")

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        raise ApplicationError("Changing is not supported here.", code="method_not_allowed")

    def perform_service_destroy(self, instance: Any) -> Any:
        raise ApplicationError("Removing is not supported here.", code="method_not_allowed")


class _DryRun(Exception):
    """Rolls back a trial run of a bulk upsert (see :func:`bulk_upsert`)."""


def bulk_upsert(
    request: Request,
    row_serializer: type[StrictSerializer],
    upsert: Callable[[list[dict[str, Any]]], T],
) -> T:
    """Validate a JSON array of rows and hand them to ``upsert``, all or nothing.

    Every bad row is named in one answer: when some rows are malformed, the well-formed ones
    still go through ``upsert`` in a transaction that is then rolled back, so the errors only
    the service can see (an unknown tax code, a barcode another product owns) are reported
    beside the format errors, by the rows' positions in the request. Nothing is changed.
    """
    rows, errors = _validated_rows(request, row_serializer)
    if not errors:
        return upsert([row for row in rows if row is not None])
    positions = [index for index, row in enumerate(rows) if row is not None]
    try:
        with transaction.atomic():
            upsert([row for row in rows if row is not None])
            raise _DryRun
    except _DryRun:
        pass
    except ValidationFailed as exc:
        if exc.code != "invalid_rows":
            raise
        for found in (exc.details or {}).get("rows", []):
            errors.append({**found, "index": positions[found["index"]]})
    errors.sort(key=lambda row: row["index"])
    first = errors[0]
    field_name, messages = next(iter(first["errors"].items()))
    message = messages[0] if isinstance(messages, list) and messages else messages
    raise ValidationFailed(
        f"{len(errors)} of {len(rows)} rows are not valid; nothing was changed. "
        f"First: row {first['index']}, {field_name}: {message}",
        code="invalid_rows",
        details={"rows": errors},
    )


def _validated_rows(
    request: Request, row_serializer: type[StrictSerializer]
) -> tuple[list[dict[str, Any] | None], list[dict[str, Any]]]:
    """The rows (None where malformed) and the format errors, by index; changes nothing."""
    rows = request.data
    if not isinstance(rows, list):
        raise ValidationFailed(
            "The body of a bulk request is a JSON array of rows.", code="invalid_body"
        )
    if len(rows) > settings.BULK_MAX_ROWS:
        raise PayloadTooLarge(
            f"At most {settings.BULK_MAX_ROWS} rows per request; this one has {len(rows)}.",
            code="too_many_rows",
        )
    if not rows:
        raise ValidationFailed("The request has no rows.", code="invalid_body")
    validated: list[dict[str, Any] | None] = []
    errors: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        serializer = row_serializer(data=row)
        if serializer.is_valid():
            validated.append(dict(serializer.validated_data))
        else:
            validated.append(None)
            errors.append({"index": index, "errors": _plain(serializer.errors)})
    return validated, errors
