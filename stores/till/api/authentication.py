"""Who is at the till: a cashier signed in on the cashier page (the Django session), or an API
client sending ``X-Cashier`` and ``X-Cashier-Pin`` with each request."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from stores.local import LocalCashier
from stores.till.auth import cashier_authenticate, cashier_current
from stores.till.errors import CashierUnauthenticated

SESSION_KEY = "till_cashier"


class CashierPrincipal:
    """``request.user`` for the till API: the signed-in cashier."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, cashier: LocalCashier) -> None:
        self.cashier = cashier
        self.pk = cashier.code
        self.username = cashier.code

    def __str__(self) -> str:
        return self.cashier.code


class CashierHeaderAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[CashierPrincipal, None] | None:
        code = request.headers.get("X-Cashier")
        if not code:
            return None
        try:
            cashier = cashier_authenticate(code=code, pin=request.headers.get("X-Cashier-Pin", ""))
        except CashierUnauthenticated as exc:
            raise AuthenticationFailed(exc.message) from None
        return CashierPrincipal(cashier), None

    def authenticate_header(self, request: Request) -> str:
        return 'Cashier realm="till"'


class CashierSessionAuthentication(SessionAuthentication):
    """The cashier page's session; like DRF's, it enforces CSRF on unsafe methods."""

    def authenticate(self, request: Request) -> tuple[CashierPrincipal, None] | None:
        session = getattr(request._request, "session", None)
        code = session.get(SESSION_KEY) if session is not None else None
        if not code:
            return None
        cashier = cashier_current(code)
        if cashier is None:
            return None
        self.enforce_csrf(request)
        return CashierPrincipal(cashier), None


class IsCashier(BasePermission):
    message = "Sign in with a cashier code and PIN (X-Cashier and X-Cashier-Pin)."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, CashierPrincipal)
