"""API responses always carry the protocol's error body, even where Django answers itself.

DRF's exception handler covers its views. Django answers some requests before or outside any
DRF view (an unknown path, a CSRF failure, a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, an
error in a plain view); under ``/api/`` this middleware gives those the same JSON body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from erp.api.errors import error_body, is_api_path

logger = logging.getLogger(__name__)

_CODES = {
    400: ("bad_request", "The request could not be understood."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("request_too_large", "The request body is too large."),
    500: ("internal_error", "An unexpected error occurred; it has been logged."),
}


class ApiErrorBodyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api_path(request.path)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code, message = _CODES.get(
                response.status_code,
                ("error", response.reason_phrase or "The request failed."),
            )
            if response.status_code == 404:
                message = f"No such endpoint: {request.path}"
            replacement = JsonResponse(error_body(code, message), status=response.status_code)
            for header in ("Retry-After", "WWW-Authenticate", "Allow"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api_path(request.path):
            return None
        from django.core.exceptions import RequestDataTooBig

        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(error_body("request_too_large", str(exception)), status=413)
        logger.exception("unhandled error at %s", request.path)
        return JsonResponse(error_body(*_CODES[500]), status=500)
