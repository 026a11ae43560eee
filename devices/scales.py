"""Scales: a ``Scale`` protocol and a file-backed scale.

``DEVICES_SCALE=file`` reads the weight in kg (``0.452``) from ``<DEVICES_STATE_DIR>/
scale-weight``, which a serial-port reader (or a test) keeps current; no file, an empty one
or an unreadable value is "no stable weight". ``none`` (the default) means the till has no
scale: weighed items take their weight from a barcode label or from the cashier.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Protocol, runtime_checkable

from django.conf import settings

from devices.state import state_dir


class ScaleUnavailable(Exception):
    """No stable weight can be read (no scale, nothing on it, or the scale is offline)."""


@runtime_checkable
class Scale(Protocol):
    device: str

    def read_weight(self) -> Decimal:
        """The stable weight on the scale in kg; raise ScaleUnavailable otherwise."""
        ...


class FileScale:
    def __init__(self, device: str = "scale-1") -> None:
        self.device = device

    def read_weight(self) -> Decimal:
        try:
            raw = (state_dir() / "scale-weight").read_text().strip()
        except OSError:
            raise ScaleUnavailable("the scale reports no weight") from None
        try:
            weight = Decimal(raw)
        except InvalidOperation:
            raise ScaleUnavailable(f"the scale sent {raw!r}") from None
        if not weight.is_finite() or weight <= 0:
            raise ScaleUnavailable("nothing is on the scale")
        return weight


def get_scale() -> Scale | None:
    """The configured scale (``DEVICES_SCALE``), or None when the till has none."""
    if getattr(settings, "DEVICES_SCALE", "none") == "file":
        return FileScale()
    return None
