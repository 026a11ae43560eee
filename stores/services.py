"""Writes to stores, registers and node keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone

from erp.errors import Conflict, ValidationFailed
from erp.writes import record_delete, record_save, record_update
from inventory.models import Currency, StockLocation
from inventory.services import stock_location_create
from stores.models import Cashier, CashierStore, NodeKey, Register, Sale, Store, TillSession

KEY_PREFIX = "tbk"
# last_used_at is a hint for operators, not an audit trail: write it at most this often.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


@transaction.atomic
def store_create(
    *,
    actor: Any,
    stock_location: StockLocation | None = None,
    reason: str | None = None,
    **fields: Any,
) -> Store:
    """Create a store and, unless one is given, its sales-floor stock location."""
    if stock_location is None:
        code = fields.get("code", "")
        if StockLocation.objects.filter(code=code).exists():
            raise Conflict(
                f"A stock location {code!r} already exists; name it as the store's location "
                "or choose another store code.",
                details={"code": ["A stock location with this code exists."]},
            )
        stock_location = stock_location_create(
            actor=actor,
            code=code,
            name=f"{fields.get('name', code)} sales floor",
            kind=StockLocation.Kind.STORE,
            reason=reason,
        )
    return record_save(
        instance=Store(stock_location=stock_location, **fields), actor=actor, reason=reason
    )


def store_update(
    *, store: Store, actor: Any, changes: dict[str, Any], reason: str | None = None
) -> Store:
    return record_update(
        instance=store, changes=changes, actor=actor, reason=reason, immutable=("code",)
    )


@transaction.atomic
def store_delete(*, store: Store, actor: Any, reason: str | None = None) -> None:
    location = store.stock_location
    record_delete(instance=store, actor=actor, reason=reason)
    if location.kind == StockLocation.Kind.STORE:
        record_delete(instance=location, actor=actor, reason=reason)


def register_create(
    *, actor: Any, store: Store, reason: str | None = None, **fields: Any
) -> Register:
    return record_save(instance=Register(store=store, **fields), actor=actor, reason=reason)


def register_update(
    *, register: Register, actor: Any, changes: dict[str, Any], reason: str | None = None
) -> Register:
    return record_update(
        instance=register, changes=changes, actor=actor, reason=reason, immutable=("code",)
    )


def register_delete(*, register: Register, actor: Any, reason: str | None = None) -> None:
    record_delete(instance=register, actor=actor, reason=reason)


# --- node keys ----------------------------------------------------------------------------------


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@transaction.atomic
def node_key_issue(*, actor: Any, store: Store, label: str = "") -> tuple[NodeKey, str]:
    """Issue a key for ``store``. The plain key is returned here once and stored nowhere.

    Keys carry 256 random bits, so a single SHA-256 digest is enough to store them safely
    (a slow hash protects guessable secrets such as passwords and PINs, not random keys),
    and it keeps authenticating each push cheap.
    """
    if not store.active:
        raise ValidationFailed(
            f"Store {store.code} is inactive; activate it before issuing a key.",
            details={"store": ["Inactive store."]},
        )
    for _attempt in range(5):
        prefix = secrets.token_hex(4)
        if not NodeKey.objects.filter(prefix=prefix).exists():
            break
    else:  # pragma: no cover - 2**32 prefixes
        raise Conflict("Could not pick a unique key prefix; try again.")
    plain = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    node_key = NodeKey(
        store=store,
        prefix=prefix,
        digest=_digest(plain),
        label=label,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    record_save(instance=node_key, actor=actor, reason="issued")
    return node_key, plain


def node_key_revoke(*, node_key: NodeKey, actor: Any) -> NodeKey:
    if node_key.revoked_at is not None:
        return node_key
    return record_update(
        instance=node_key,
        changes={
            "revoked_at": timezone.now(),
            "revoked_by": actor if getattr(actor, "is_authenticated", False) else None,
        },
        actor=actor,
        reason="revoked",
    )


def node_key_authenticate(*, key: str) -> NodeKey | None:
    """The active key matching ``key`` of an active store, or None. Records its last use."""
    # Issued keys are printable ASCII. Anything else is garbage, and must not reach the
    # database (PostgreSQL refuses NUL) or the hash (a lone surrogate cannot be encoded).
    if not (key.isascii() and key.isprintable()):
        return None
    # The secret is URL-safe base64 and may itself contain "_": split off the prefix only.
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    # Every sync request runs this: a raw query (converters still applied) costs a fraction of
    # building the ORM's. The store is loaded when used (the pull needs only its id).
    node_key = next(
        iter(
            NodeKey.objects.raw(
                "SELECT k.* FROM stores_nodekey k JOIN stores_store s ON s.id = k.store_id "
                "WHERE k.prefix = %s AND k.revoked_at IS NULL AND s.active LIMIT 1",
                [parts[1]],
            )
        ),
        None,
    )
    if node_key is None or not hmac.compare_digest(node_key.digest, _digest(key)):
        return None
    now = timezone.now()
    if node_key.last_used_at is None or now - node_key.last_used_at > LAST_USED_RESOLUTION:
        # A plain UPDATE: last use is excluded from history and must not contend with writers.
        NodeKey.objects.filter(pk=node_key.pk).update(last_used_at=now)
        node_key.last_used_at = now
    return node_key


# --- store offline rules ------------------------------------------------------------------------


def store_offline_card_limit_errors(limit: Decimal, currency: Currency) -> list[str]:
    """What is wrong with ``limit`` as an offline card limit in ``currency`` (empty if fine):
    amounts carry the currency's decimals, so 50.005 EUR is a typo, not a limit."""
    if limit != limit.quantize(currency.quantum()):
        return [f"{currency.code} amounts have at most {currency.minor_units} decimals."]
    return []


# --- cashiers -----------------------------------------------------------------------------------
#
# A cashier signs in at a till with a code and a PIN. The PIN is kept only as a slow hash
# (Django's password hashers, ``make_password``), which reaches the store nodes through the change
# feed so a till can check a PIN offline. The clear PIN never leaves these functions: it is not
# stored, not logged and not put in an error message, and the hash stays out of history.
#
# Memberships are ``CashierStore`` rows written one by one through ``record_save`` and
# ``record_delete``, so each has its history row and the feed triggers see each change. A
# cashier can only be *added* to an active store (its nodes are the ones that sign cashiers
# in; an inactive store's key is refused); a membership of a store deactivated later is kept,
# so reactivating the store brings its cashiers back.

PIN_RULE = "A PIN is 4 to 8 digits (0-9)."
_PIN_RE = re.compile(r"[0-9]{4,8}")
PIN_CHANGED = "PIN changed"


def cashier_pin_errors(pin: object) -> list[str]:
    """What is wrong with ``pin`` (empty when it is a valid PIN). Never quotes the PIN."""
    if not isinstance(pin, str) or _PIN_RE.fullmatch(pin) is None:
        return [PIN_RULE]
    return []


def _pin_hash(pin: str) -> str:
    errors = cashier_pin_errors(pin)
    if errors:
        raise ValidationFailed(f"pin: {errors[0]}", details={"pin": errors})
    return make_password(pin)


def cashier_check_pin(cashier: Cashier, pin: str) -> bool:
    """Whether ``pin`` is the cashier's PIN. Checks the PIN only, not whether the cashier is
    active or may work in a given store."""
    if not cashier.pin_hash or cashier_pin_errors(pin):
        return False
    return check_password(pin, cashier.pin_hash)


def _with_note(reason: str | None, note: str) -> str:
    return f"{reason}: {note}" if reason else note


def _check_new_stores(stores: Sequence[Store], *, already: Collection[int] = ()) -> None:
    errors: list[str] = []
    seen: set[int] = set()
    for store in stores:
        if store.pk in seen:
            errors.append(f"{store.code}: listed twice.")
        seen.add(store.pk)
        if store.pk not in already and not store.active:
            errors.append(f"{store.code}: the store is inactive; activate it first.")
    if errors:
        raise ValidationFailed(f"stores: {errors[0]}", details={"stores": errors})


@transaction.atomic
def cashier_store_add(
    *, cashier: Cashier, store: Store, actor: Any, reason: str | None = None
) -> CashierStore:
    """Let ``cashier`` work in ``store`` (an active store); a no-op if they already do."""
    existing = CashierStore.objects.filter(cashier=cashier, store=store).first()
    if existing is not None:
        return existing
    _check_new_stores([store])
    return record_save(
        instance=CashierStore(cashier=cashier, store=store), actor=actor, reason=reason
    )


@transaction.atomic
def cashier_store_remove(
    *, cashier: Cashier, store: Store, actor: Any, reason: str | None = None
) -> bool:
    """Stop ``cashier`` working in ``store``; False if they did not."""
    membership = CashierStore.objects.filter(cashier=cashier, store=store).first()
    if membership is None:
        return False
    record_delete(instance=membership, actor=actor, reason=reason)
    return True


def _cashier_stores_set(
    *, cashier: Cashier, stores: Sequence[Store], actor: Any, reason: str | None
) -> None:
    current = {m.store_id: m for m in CashierStore.objects.filter(cashier=cashier)}
    _check_new_stores(stores, already=set(current))
    wanted = {store.pk for store in stores}
    for store_id in sorted(set(current) - wanted):
        record_delete(instance=current[store_id], actor=actor, reason=reason)
    for store in sorted(stores, key=lambda s: s.pk):
        if store.pk not in current:
            record_save(
                instance=CashierStore(cashier=cashier, store=store), actor=actor, reason=reason
            )


@transaction.atomic
def cashier_create(
    *,
    actor: Any,
    code: str,
    name: str,
    role: str,
    pin: str,
    stores: Sequence[Store],
    active: bool = True,
    reason: str | None = None,
) -> Cashier:
    """Create a cashier with a PIN, working in ``stores`` (active stores, possibly none)."""
    pin_hash = _pin_hash(pin)
    cashier = record_save(
        instance=Cashier(code=code, name=name, role=role, active=active, pin_hash=pin_hash),
        actor=actor,
        reason=reason,
    )
    _cashier_stores_set(cashier=cashier, stores=stores, actor=actor, reason=reason)
    return cashier


@transaction.atomic
def cashier_update(
    *,
    cashier: Cashier,
    actor: Any,
    changes: dict[str, Any],
    pin: str | None = None,
    stores: Sequence[Store] | None = None,
    reason: str | None = None,
) -> Cashier:
    """Change a cashier's fields (not the code), and with ``pin`` or ``stores`` given, set a
    new PIN or the stores they work in (``stores`` replaces the list)."""
    for name in ("pin", "pin_hash", "stores"):
        if name in changes:
            # A PIN is set through ``pin`` (hashed here) and stores through ``stores``.
            raise TypeError(f"cashier_update: {name!r} is not a change; see its arguments.")
    changes = dict(changes)
    row_reason = reason
    if pin is not None:
        changes["pin_hash"] = _pin_hash(pin)
        row_reason = _with_note(reason, PIN_CHANGED)
    if changes:
        record_update(
            instance=cashier,
            changes=changes,
            actor=actor,
            reason=row_reason,
            immutable=("code",),
        )
    if stores is not None:
        _cashier_stores_set(cashier=cashier, stores=stores, actor=actor, reason=reason)
    return cashier


@transaction.atomic
def cashier_set_pin(
    *, cashier: Cashier, actor: Any, pin: str, reason: str | None = None
) -> Cashier:
    return cashier_update(cashier=cashier, actor=actor, changes={}, pin=pin, reason=reason)


def cashier_is_used(cashier: Cashier) -> bool:
    """Whether a sale, return or till session names the cashier (by code, as the till sent it)."""
    return (
        Sale.objects.filter(cashier=cashier.code).exists()
        or TillSession.objects.filter(cashier=cashier.code).exists()
    )


@transaction.atomic
def cashier_delete(*, cashier: Cashier, actor: Any, reason: str | None = None) -> bool:
    """Delete a cashier no sale or session names, or deactivate one; True if deleted.

    Sales name cashiers by code, so a deleted code could be reused by someone else and make
    those sales ambiguous: a used cashier is deactivated, and keeps its memberships.
    """
    if cashier_is_used(cashier):
        if cashier.active:
            record_update(
                instance=cashier,
                changes={"active": False},
                actor=actor,
                reason="deactivated: in use",
            )
        return False
    # Memberships first, each with its own history row naming the actor (a cascade would not).
    for membership in CashierStore.objects.filter(cashier=cashier).order_by("pk"):
        record_delete(instance=membership, actor=actor, reason=reason)
    record_delete(instance=cashier, actor=actor, reason=reason)
    return True
