"""The application error hierarchy: every refusal the product makes, with a stable code.

Services raise these; the API's exception handler turns each into the error body of the sync
protocol (``{"error": {"code", "message", "details"}}``) with its HTTP status, and management
commands print the message on one line and exit non-zero.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    status: int = 400
    code: str = "bad_request"
    default_message: str = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    status = 400
    code = "validation_failed"
    default_message = "Some fields are not valid."


class NotFound(ApplicationError):
    status = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(ApplicationError):
    status = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class InUse(Conflict):
    code = "in_use"
    default_message = "This record is in use and cannot be deleted; deactivate it instead."


class PayloadTooLarge(ApplicationError):
    status = 413
    code = "request_too_large"
    default_message = "The request body is too large."
