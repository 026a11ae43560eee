"""Cashier sign-in against the local cashier mirror, and supervisor approval.

A PIN is checked against head office's slow hash (``LocalCashier.pin_hash``), so a till signs
cashiers in while head office is unreachable. The slow hash costs hundreds of milliseconds by
design; an API client sends its PIN with every request, so a PIN once verified against a
given hash is remembered in this process as an HMAC (keyed with the secret key, never the
PIN itself) and later requests compare that in microseconds. A new PIN at head office changes
the hash, which forgets the remembered one.
"""

from __future__ import annotations

import hashlib
import hmac
import threading

from django.conf import settings
from django.contrib.auth.hashers import check_password

from stores.local import LocalCashier
from stores.till.errors import CashierUnauthenticated, SupervisorRefused, SupervisorRequired
from stores.till.pricing import StoreRules

SUPERVISOR = "supervisor"
_verified: dict[tuple[str, str], bytes] = {}
_lock = threading.Lock()


def _mac(code: str, pin: str) -> bytes:
    return hmac.new(
        settings.SECRET_KEY.encode(), f"{code}\0{pin}".encode(), hashlib.sha256
    ).digest()


def pin_matches(cashier: LocalCashier, pin: str) -> bool:
    if not cashier.pin_hash or not isinstance(pin, str) or not pin:
        return False
    key = (cashier.code, cashier.pin_hash)
    mac = _mac(cashier.code, pin)
    with _lock:
        known = _verified.get(key)
    if known is not None:
        return hmac.compare_digest(known, mac)
    if not check_password(pin, cashier.pin_hash):
        return False
    with _lock:
        _verified[key] = mac
    return True


def cashier_authenticate(*, code: str, pin: str) -> LocalCashier:
    """The active cashier with this code and PIN (one vague error for every failure)."""
    cashier = LocalCashier.objects.filter(code=(code or "").strip()).first()
    if cashier is None or not cashier.active or not pin_matches(cashier, pin):
        raise CashierUnauthenticated("Unknown cashier code or wrong PIN.")
    return cashier


def cashier_current(code: str) -> LocalCashier | None:
    """The cashier of a signed-in session, if still active (head office may have disabled)."""
    cashier = LocalCashier.objects.filter(code=code).first()
    return cashier if cashier is not None and cashier.active else None


def supervisor_approve(
    *,
    operation: str,
    cashier: LocalCashier,
    rules: StoreRules,
    supervisor: str | None,
    supervisor_pin: str | None,
    always: bool = False,
) -> str:
    """Who authorised ``operation``: the supervisor whose code and PIN were given, or the
    signed-in cashier when they are a supervisor themselves; "" when the store does not
    put the operation behind a supervisor (and ``always`` is not set)."""
    if supervisor:
        found = LocalCashier.objects.filter(code=supervisor.strip()).first()
        if (
            found is None
            or not found.active
            or found.role != SUPERVISOR
            or not pin_matches(found, supervisor_pin or "")
        ):
            raise SupervisorRefused()
        return found.code
    if not (always or rules.needs_supervisor(operation)):
        return ""
    if cashier.role == SUPERVISOR:
        return cashier.code
    raise SupervisorRequired(
        f"{operation.replace('_', ' ').capitalize()} needs a supervisor: give supervisor and "
        "supervisor_pin."
    )
