"""Project-level views: the health check, and error pages that speak JSON under /api/."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from erp.api.errors import error_body, is_api_path


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and compose health checks."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure means "not healthy", whatever its class
        return JsonResponse(error_body("unhealthy", f"database unreachable: {exc}"), status=503)
    return JsonResponse({"status": "ok"})


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return JsonResponse(
            error_body("not_found", f"No such endpoint: {request.path}"), status=404
        )
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_path(request.path):
        return JsonResponse(
            error_body("internal_error", "An unexpected error occurred; it has been logged."),
            status=500,
        )
    return defaults.server_error(request)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return JsonResponse(error_body("forbidden", "You may not do this."), status=403)
    return defaults.permission_denied(request, exception)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        message = (
            "The request is too large."
            if "DataTooBig" in type(exception).__name__
            else ("The request could not be understood.")
        )
        code = "request_too_large" if "DataTooBig" in type(exception).__name__ else "bad_request"
        status = 413 if code == "request_too_large" else 400
        return JsonResponse(error_body(code, message), status=status)
    return defaults.bad_request(request, exception)
