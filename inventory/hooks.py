"""Who wants to know when products appear, without the catalogue knowing who they are.

``inventory`` depends on no other app, yet ingestion holds events for SKUs it does not know
and must retry them when those products are created. Apps register a callback here (sync does
in its ``AppConfig.ready``); the catalogue's services call :func:`products_created` after the
creating transaction commits. It is a named, typed seam, not a Django signal: there is one
event and every caller of it is in ``inventory.services``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import transaction

_listeners: list[Callable[[list[str]], None]] = []


def on_products_created(listener: Callable[[list[str]], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def products_created(skus: Sequence[str]) -> None:
    """Tell listeners, once the current transaction commits, that ``skus`` now exist."""
    created = list(skus)
    if not created or not _listeners:
        return

    def notify() -> None:
        for listener in _listeners:
            listener(created)

    transaction.on_commit(notify)
