"""Writes to stores, registers and node keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from erp.errors import Conflict, ValidationFailed
from erp.writes import record_delete, record_save, record_update
from inventory.models import StockLocation
from inventory.services import stock_location_create
from stores.models import NodeKey, Register, Store

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
    node_key = (
        NodeKey.objects.select_related("store")
        .filter(prefix=parts[1], revoked_at__isnull=True, store__active=True)
        .first()
    )
    if node_key is None or not hmac.compare_digest(node_key.digest, _digest(key)):
        return None
    now = timezone.now()
    if node_key.last_used_at is None or now - node_key.last_used_at > LAST_USED_RESOLUTION:
        # A plain UPDATE: last use is excluded from history and must not contend with writers.
        NodeKey.objects.filter(pk=node_key.pk).update(last_used_at=now)
        node_key.last_used_at = now
    return node_key
