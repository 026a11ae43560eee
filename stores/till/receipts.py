"""Receipt text, and printing it after the sale has committed.

Printing goes through ``devices.printers`` and never belongs to the sale's transaction: the
job is handed to the spooler in ``transaction.on_commit``, so a printer that is down, out of
paper or slow never blocks, fails or rolls back a sale. When the printer's state changes the
till records a ``device_status`` event for head office (its own short transaction).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from devices.printers import SPOOLER_THREAD, PrintJob, spooler
from stores.outbox import outbox_append
from stores.till.pricing import StoreRules

logger = logging.getLogger(__name__)
WIDTH = 40


def _row(left: str, right: str) -> str:
    left = left[: WIDTH - len(right) - 1]
    return f"{left}{' ' * (WIDTH - len(left) - len(right))}{right}"


def receipt_text(
    *, kind: str, data: Mapping[str, Any], rules: StoreRules, when: str, copy: bool = False
) -> str:
    lines = [rules.name.center(WIDTH).rstrip(), f"{rules.store_code} / {rules.register_code}"]
    if copy:
        lines.append("*** COPY ***".center(WIDTH).rstrip())
    title = "RETURN" if kind == "return" else "RECEIPT"
    lines += [f"{title} {data['receipt_no']}", when, f"Cashier {data.get('cashier') or ''}"]
    if data.get("original_receipt_no"):
        lines.append(f"Original receipt {data['original_receipt_no']}")
    lines.append("-" * WIDTH)
    for line in data["lines"]:
        name = line.get("name") or line["sku"]
        lines.append(_row(name, line["line_total"]))
        lines.append(f"  {line['qty']} x {line['unit_price']}  {line['tax_code']}")
        if line.get("discount") and line["discount"].strip("0.") != "":
            lines.append(f"  discount -{line['discount']}")
        if line.get("price_override_reason"):
            lines.append(f"  price: {line['price_override_reason']}")
    lines.append("-" * WIDTH)
    totals = data["totals"]
    lines.append(_row("TOTAL " + data["currency"], totals["gross"]))
    lines.append(_row("  net", totals["net"]))
    lines.append(_row("  tax", totals["tax"]))
    for tender in data["tenders"]:
        label = tender["method"] + (" (offline)" if tender.get("offline_authorized") else "")
        lines.append(_row(label, tender["amount"]))
        if tender.get("change") and tender["change"].strip("0.") != "":
            lines.append(_row("change", tender["change"]))
    lines.append("")
    return "\n".join(lines) + "\n"


def _report_device(device: str, kind: str, state: str, detail: str) -> None:
    """Record a device state change as an event (called from the print worker)."""
    in_worker = threading.current_thread().name == SPOOLER_THREAD
    try:
        with transaction.atomic():
            now = timezone.now()
            from stores.till.pricing import store_rules

            outbox_append(
                type="device_status",
                payload={"device": device, "kind": kind, "state": state, "detail": detail or None},
                occurred_at=now,
                business_date=store_rules().business_date(now),
            )
    except Exception:
        logger.exception("could not record the state of %s", device)
    finally:
        if in_worker:
            connection.close()  # the worker thread's own connection; it may idle for hours


def print_after_commit(*, name: str, text: str) -> None:
    """Print ``text`` once the current transaction has committed (at once outside one)."""
    job = PrintJob(name=name, text=text)
    transaction.on_commit(lambda: spooler.submit(job, _report_device))
