"""The one place master-data rows are saved and deleted, so every write is validated and audited.

Services call these; nothing else calls ``.save()`` or ``.delete()`` on domain models. Each
write runs the model's full validation (turning Django's ``ValidationError`` into the API's
``validation_failed``), records who made it and why in the row's history, and maps a
protected delete to ``in_use``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError, RestrictedError

from erp.errors import Conflict, InUse, ValidationFailed

M = TypeVar("M", bound=models.Model)


def _audit(instance: models.Model, actor: Any, reason: str | None) -> None:
    if actor is not None and getattr(actor, "is_authenticated", False):
        instance._history_user = actor  # type: ignore[attr-defined]
    if reason:
        instance._change_reason = reason  # type: ignore[attr-defined]


def validation_details(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {field: [str(m) for m in messages] for field, messages in exc.message_dict.items()}
    return {"non_field_errors": [str(m) for m in exc.messages]}


def record_save(
    *,
    instance: M,
    actor: Any = None,
    reason: str | None = None,
    validate_unique: bool = True,
    exclude: list[str] | None = None,
) -> M:
    """Validate and save ``instance`` in one transaction, with its history row."""
    try:
        instance.full_clean(exclude=exclude, validate_unique=validate_unique)
    except ValidationError as exc:
        details = validation_details(exc)
        first_field, messages = next(iter(details.items()))
        label = "" if first_field == "non_field_errors" else f"{first_field}: "
        raise ValidationFailed(f"{label}{messages[0]}", details=details) from exc
    _audit(instance, actor, reason)
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise Conflict(
            f"This {instance._meta.verbose_name} conflicts with data already stored: "
            f"{_constraint_hint(exc)}",
        ) from exc
    return instance


def record_update(
    *,
    instance: M,
    changes: dict[str, Any],
    actor: Any = None,
    reason: str | None = None,
    immutable: tuple[str, ...] = (),
) -> M:
    """Apply ``changes`` to ``instance`` and save it; refuses changes to ``immutable`` fields."""
    for name in immutable:
        if name in changes and changes[name] != getattr(instance, name):
            raise ValidationFailed(
                f"{name} cannot be changed once created.",
                details={name: ["This field cannot be changed once created."]},
            )
    for name, value in changes.items():
        setattr(instance, name, value)
    return record_save(instance=instance, actor=actor, reason=reason)


def record_delete(*, instance: models.Model, actor: Any = None, reason: str | None = None) -> None:
    """Delete ``instance`` (history keeps a ``-`` row); ``in_use`` if something refers to it."""
    _audit(instance, actor, reason)
    try:
        with transaction.atomic():
            instance.delete()
    except (ProtectedError, RestrictedError) as exc:
        raise InUse(
            f"This {instance._meta.verbose_name} is in use and cannot be deleted; "
            "deactivate it instead."
        ) from exc


def _constraint_hint(exc: IntegrityError) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else "a database constraint"
    return text[:200]
