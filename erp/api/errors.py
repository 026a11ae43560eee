"""One exception handler for the whole API: every 4xx and 5xx gets the protocol's error body.

``{"error": {"code": "<stable_snake_case>", "message": "<sentence>", "details": ...}}``
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from erp.errors import ApplicationError

logger = logging.getLogger(__name__)

_DRF_CODES: list[tuple[type[drf.APIException], str]] = [
    (drf.ParseError, "malformed_json"),
    (drf.NotAuthenticated, "unauthenticated"),
    (drf.AuthenticationFailed, "unauthenticated"),
    (drf.PermissionDenied, "forbidden"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "throttled"),
]


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def plain_errors(detail: Any) -> Any:
    """ErrorDetail trees to plain JSON (strings, lists, dicts)."""
    if isinstance(detail, dict):
        return {str(key): plain_errors(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [plain_errors(item) for item in detail]
    return str(detail)


def _codes(detail: Any) -> set[str]:
    if isinstance(detail, dict):
        return set().union(*(_codes(value) for value in detail.values())) if detail else set()
    if isinstance(detail, list):
        return set().union(*(_codes(item) for item in detail)) if detail else set()
    return {getattr(detail, "code", "invalid")}


def _validation_response(detail: Any) -> Response:
    details = plain_errors(detail)
    if not isinstance(details, dict):
        details = {"non_field_errors": details if isinstance(details, list) else [details]}
    if "unknown_field" in _codes(detail):
        unknown = (
            sorted(name for name, errors in detail.items() if "unknown_field" in _codes(errors))
            if isinstance(detail, dict)
            else []
        )
        message = (
            f"Unknown field{'s' if len(unknown) != 1 else ''}: {', '.join(unknown)}."
            if unknown
            else "The request contains unknown fields."
        )
        return Response(error_body("unknown_field", message, details), status=400)
    return Response(
        error_body(
            "validation_failed", _first_message(details) or "Some fields are not valid.", details
        ),
        status=400,
    )


def _first_message(details: Any, path: str = "") -> str | None:
    if isinstance(details, dict):
        for key, value in details.items():
            label = key if key != "non_field_errors" else ""
            found = _first_message(value, f"{path}.{label}".strip(".") if label else path)
            if found:
                return found
        return None
    if isinstance(details, list):
        for item in details:
            found = _first_message(item, path)
            if found:
                return found
        return None
    return f"{path}: {details}" if path else str(details)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, ApplicationError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
        for name, value in exc.headers.items():
            response[name] = value
        return response
    if isinstance(exc, drf.ValidationError):
        return _validation_response(exc.detail)
    if isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return _validation_response(detail)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(
            error_body("forbidden", "You do not have permission to do this."), status=403
        )
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        return Response(error_body("request_too_large", str(exc)), status=413)
    if isinstance(exc, ProtectedError | RestrictedError):
        return Response(
            error_body(
                "in_use", "This record is in use and cannot be deleted; deactivate it instead."
            ),
            status=409,
        )
    if isinstance(exc, IntegrityError):
        logger.warning("integrity error reached the API: %s", exc)
        return Response(
            error_body("conflict", "The change conflicts with data already stored."), status=409
        )
    if isinstance(exc, DataError):
        # SQLSTATE class 22: a value the database cannot hold or compare (a NUL in a code on
        # PostgreSQL, a number out of range), so the request is at fault, not the server.
        logger.info("data error reached the API: %s", exc)
        message = "A value in the request cannot be stored or looked up."
        return Response(
            error_body("validation_failed", message, {"non_field_errors": [message]}),
            status=400,
        )
    if isinstance(exc, drf.APIException):
        code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), None)
        if code is None:
            code = exc.default_code if isinstance(exc.default_code, str) else "error"
        message = str(exc.detail) if not isinstance(exc.detail, dict | list) else exc.default_detail
        response = Response(error_body(code, str(message)), status=exc.status_code)
        if getattr(exc, "auth_header", None):
            response["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            response["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        return response
    logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
    return Response(
        error_body("internal_error", "An unexpected error occurred; it has been logged."),
        status=500,
    )


def _json_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def is_api_path(path: str) -> bool:
    return path.startswith(("/api/", "/till/api/"))
