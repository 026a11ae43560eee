"""Cashier sign-in against the local cashier mirror, and supervisor approval.

A PIN is checked against head office's slow hash (``LocalCashier.pin_hash``), so a till signs
cashiers in while head office is unreachable. The slow hash costs hundreds of milliseconds by
design; an API client sends its PIN with every request, so a PIN once verified against a
given hash is remembered in this process as an HMAC (keyed with the secret key, never the
PIN itself) and later requests compare that in microseconds. A new PIN at head office changes
the hash, which forgets the remembered one.

That cache makes a wrong guess as cheap as a right one, so failed PINs are counted per
cashier code in the node's database (``LocalPinLockout``: every worker process of the node
sees the same count, which an in-process or per-process cache would not): after
``PIN_MAX_FAILURES`` failures in a row the code is locked for ``PIN_LOCKOUT``, for the sign-in
page, ``X-Cashier-Pin`` and supervisor approval alike, and even the right PIN is refused
(``PinLocked``, 429, with when to retry) until then. A success clears the count. Codes that
name no cashier are counted too, so a lock says nothing about which codes exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from stores.local import LocalCashier, LocalPinLockout
from stores.till.errors import (
    CashierUnauthenticated,
    PinLocked,
    SupervisorRefused,
    SupervisorRequired,
)
from stores.till.pricing import StoreRules

SUPERVISOR = "supervisor"
PIN_MAX_FAILURES = 5
PIN_LOCKOUT = dt.timedelta(minutes=5)
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


def _lock_key(code: str) -> str:
    return code[: LocalPinLockout._meta.get_field("code").max_length]


def pin_lock_check(code: str, *, now: dt.datetime | None = None) -> None:
    """Refuse a code that is locked out (``PinLocked``, saying when to try again)."""
    now = now or timezone.now()
    until = (
        LocalPinLockout.objects.filter(code=_lock_key(code), locked_until__gt=now)
        .values_list("locked_until", flat=True)
        .first()
    )
    if until is not None:
        wait = max(int((until - now).total_seconds() + 0.999), 1)
        raise PinLocked(
            f"Too many wrong PINs for {code}: locked until {until.isoformat(timespec='seconds')}"
            f"; try again in {wait} s.",
            details={"retry_after": until.isoformat(), "retry_after_s": wait},
            headers={"Retry-After": str(wait)},
        )


def pin_failure_record(code: str, *, now: dt.datetime | None = None) -> None:
    """Count a wrong PIN for ``code``; the ``PIN_MAX_FAILURES``-th in a row locks it.

    Callers check PINs before any write transaction of theirs opens, so the count commits
    even though the request then fails; one row per code, counted with an update so
    concurrent processes never lose a failure."""
    now = now or timezone.now()
    key = _lock_key(code)
    with transaction.atomic():
        LocalPinLockout.objects.get_or_create(code=key, defaults={"last_failure_at": now})
        LocalPinLockout.objects.filter(code=key).update(
            failures=F("failures") + 1, last_failure_at=now
        )
        LocalPinLockout.objects.filter(code=key, failures__gte=PIN_MAX_FAILURES).update(
            failures=0, locked_until=now + PIN_LOCKOUT
        )


def pin_failures_clear(code: str) -> None:
    LocalPinLockout.objects.filter(code=_lock_key(code)).delete()


def _pin_checked(code: str, cashier: LocalCashier | None, pin: str, *, role: str = "") -> bool:
    """Whether ``pin`` is the PIN of ``cashier`` (active, with ``role`` when given), counting
    a failure against ``code``; a locked code is refused before its PIN is looked at."""
    pin_lock_check(code)
    ok = (
        cashier is not None
        and cashier.active
        and (not role or cashier.role == role)
        and pin_matches(cashier, pin)
    )
    if ok:
        if LocalPinLockout.objects.filter(code=_lock_key(code)).exists():
            pin_failures_clear(code)
    else:
        pin_failure_record(code)
    return ok


def cashier_authenticate(*, code: str, pin: str) -> LocalCashier:
    """The active cashier with this code and PIN (one vague error for every failure; a code
    locked out after too many wrong PINs is ``PinLocked``)."""
    code = (code or "").strip()
    cashier = LocalCashier.objects.filter(code=code).first()
    if not _pin_checked(code, cashier, pin):
        raise CashierUnauthenticated("Unknown cashier code or wrong PIN.")
    assert cashier is not None
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
        code = supervisor.strip()
        found = LocalCashier.objects.filter(code=code).first()
        if not _pin_checked(code, found, supervisor_pin or "", role=SUPERVISOR):
            raise SupervisorRefused()
        assert found is not None
        return found.code
    if not (always or rules.needs_supervisor(operation)):
        return ""
    if cashier.role == SUPERVISOR:
        return cashier.code
    raise SupervisorRequired(
        f"{operation.replace('_', ' ').capitalize()} needs a supervisor: give supervisor and "
        "supervisor_pin."
    )
