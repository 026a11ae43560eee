"""What the till refuses, each with a stable code (the sync protocol's error body)."""

from __future__ import annotations

from erp.errors import ApplicationError, Conflict, NotFound, ValidationFailed


class TillNotReady(Conflict):
    code = "till_not_ready"
    default_message = (
        "This till has no store configuration yet: set the node up (node_init) and let it "
        "pull its master data."
    )


class CashierUnauthenticated(ApplicationError):
    status = 401
    code = "unauthenticated"
    default_message = "Sign in with a cashier code and PIN (X-Cashier and X-Cashier-Pin)."


class PinLocked(ApplicationError):
    status = 429
    code = "pin_locked"
    default_message = "Too many wrong PINs for this code: wait and try again."


class SupervisorRequired(ApplicationError):
    status = 403
    code = "supervisor_required"
    default_message = "This needs a supervisor: give supervisor and supervisor_pin."


class SupervisorRefused(ApplicationError):
    status = 403
    code = "supervisor_refused"
    default_message = "The supervisor code or PIN is wrong, or that cashier is no supervisor."


class NoOpenSession(Conflict):
    code = "no_open_session"
    default_message = "No session is open on this register: open one first."


class SessionAlreadyOpen(Conflict):
    code = "session_already_open"
    default_message = "A session is already open on this register."


class SessionNotFound(NotFound):
    code = "session_not_found"
    default_message = "No such session on this register."


class BasketNotFound(NotFound):
    code = "basket_not_found"
    default_message = "No such basket."


class BasketClosed(Conflict):
    code = "basket_closed"
    default_message = "This basket is already completed or voided."


class UnknownCode(NotFound):
    code = "unknown_code"
    default_message = "No product has this barcode or SKU."


class ProductInactive(Conflict):
    code = "product_inactive"


class NoPrice(Conflict):
    code = "no_price"


class WeightRequired(ValidationFailed):
    code = "weight_required"


class InvalidQuantity(ValidationFailed):
    code = "invalid_qty"


class InvalidAmount(ValidationFailed):
    code = "invalid_amount"


class LineNotFound(NotFound):
    code = "line_not_found"
    default_message = "The basket has no such line."


class TenderRefused(ApplicationError):
    status = 402
    code = "tender_refused"


class BasketNotPaid(Conflict):
    code = "basket_not_paid"


class BasketEmpty(Conflict):
    code = "basket_empty"
    default_message = "The basket has no lines."


class ReceiptNotFound(NotFound):
    code = "receipt_not_found"


class ReturnRefused(ValidationFailed):
    code = "return_refused"
