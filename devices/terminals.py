"""Payment terminals: a ``PaymentTerminal`` protocol and a simulated terminal.

A terminal either answers (approved or declined) or cannot be reached (``TerminalOffline``);
what the till does offline (store-and-forward up to the store's offline card limit) is the
till's rule, not the terminal's. The simulated terminal's behaviour is ``approve``,
``decline`` or ``offline``: from the file ``<DEVICES_STATE_DIR>/terminal-mode`` when it exists
(so an operator or a test can switch every process of the node at once), else from
``DEVICES_TERMINAL_MODE``.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from django.conf import settings

from devices.state import state_dir

MODES = ("approve", "decline", "offline")


class TerminalOffline(Exception):
    """The terminal (or the card network behind it) cannot be reached."""


@dataclass(frozen=True)
class CardResult:
    approved: bool
    reference: str
    message: str = ""


@runtime_checkable
class PaymentTerminal(Protocol):
    device: str

    def authorize(self, *, amount: Decimal, currency: str, reference: str) -> CardResult: ...

    def refund(self, *, amount: Decimal, currency: str, reference: str) -> CardResult: ...

    def void(self, *, amount: Decimal, currency: str, reference: str) -> CardResult:
        """Reverse an approved authorisation or refund, named by the ``reference`` the
        terminal answered it with (``CardResult.reference``)."""
        ...


def terminal_mode_set(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"terminal mode is one of {', '.join(MODES)}")
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "terminal-mode").write_text(mode)


class SimulatedTerminal:
    def __init__(self, device: str = "terminal-1", mode: str | None = None) -> None:
        self.device = device
        self.fixed_mode = mode
        self.voided: list[str] = []  # references reversed, for tests and the operator

    def mode(self) -> str:
        if self.fixed_mode:
            return self.fixed_mode
        try:
            mode = (state_dir() / "terminal-mode").read_text().strip()
        except OSError:
            mode = ""
        return mode if mode in MODES else getattr(settings, "DEVICES_TERMINAL_MODE", "approve")

    def _answer(self, kind: str) -> CardResult:
        mode = self.mode()
        if mode == "offline":
            raise TerminalOffline("the payment terminal cannot reach the card network")
        reference = f"SIM-{kind}-{uuid.uuid4().hex[:12].upper()}"
        if mode == "decline":
            return CardResult(approved=False, reference=reference, message="declined by issuer")
        return CardResult(approved=True, reference=reference)

    def authorize(self, *, amount: Decimal, currency: str, reference: str) -> CardResult:
        return self._answer("AUTH")

    def refund(self, *, amount: Decimal, currency: str, reference: str) -> CardResult:
        return self._answer("REFUND")

    def void(self, *, amount: Decimal, currency: str, reference: str) -> CardResult:
        """A reversal is never declined by the issuer; only an unreachable terminal fails."""
        if self.mode() == "offline":
            raise TerminalOffline("the payment terminal cannot reach the card network")
        self.voided.append(reference)
        return CardResult(approved=True, reference=f"SIM-VOID-{uuid.uuid4().hex[:12].upper()}")


_terminal: PaymentTerminal | None = None
_lock = threading.Lock()


def get_terminal() -> PaymentTerminal:
    global _terminal
    with _lock:
        if _terminal is None:
            _terminal = SimulatedTerminal()
        return _terminal


def set_terminal(terminal: PaymentTerminal | None) -> None:
    global _terminal
    with _lock:
        _terminal = terminal
