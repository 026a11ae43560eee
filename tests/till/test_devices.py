"""The devices the till prints and pays through: printers, the spooler, the simulated payment
terminal, and the recorded device state."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from devices.printers import (
    DummyPrinter,
    FilePrinter,
    Printer,
    PrinterError,
    PrintJob,
    PrintSpooler,
    run_print_job,
    set_printer,
)
from devices.state import device_state_get, device_state_set, device_states
from devices.terminals import PaymentTerminal, SimulatedTerminal, TerminalOffline, terminal_mode_set


@pytest.fixture
def state_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DEVICES_STATE_DIR = str(tmp_path / "state")
    return tmp_path / "state"


def test_the_file_printer_writes_one_file_per_receipt_and_never_overwrites(tmp_path: Path) -> None:
    printer = FilePrinter(tmp_path)
    assert isinstance(printer, Printer)
    printer.print_text(name="S01-R1-000001", text="first")
    printer.print_text(name="S01-R1-000001", text="copy")
    assert (tmp_path / "S01-R1-000001.txt").read_text() == "first"
    assert (tmp_path / "S01-R1-000001.2.txt").read_text() == "copy"


def test_the_file_printer_reports_offline_and_paper_out(tmp_path: Path) -> None:
    missing = FilePrinter(tmp_path / "nowhere")
    with pytest.raises(PrinterError) as offline:
        missing.print_text(name="x", text="x")
    assert offline.value.state == "offline"
    (tmp_path / "PAPER_OUT").touch()
    with pytest.raises(PrinterError) as paper:
        FilePrinter(tmp_path).print_text(name="x", text="x")
    assert paper.value.state == "paper_out"
    assert not (tmp_path / "x.txt").exists()


def test_device_state_reports_news_only(state_dir: Path) -> None:
    assert device_state_set(device="printer-1", kind="printer", state="ok") is False
    assert device_state_set(device="printer-1", kind="printer", state="paper_out") is True
    assert device_state_set(device="printer-1", kind="printer", state="paper_out") is False
    assert device_state_set(device="printer-1", kind="printer", state="ok") is True
    assert device_state_set(device="scale-1", kind="scale", state="offline") is True
    assert [(d.device, d.state) for d in device_states()] == [
        ("printer-1", "ok"),
        ("scale-1", "offline"),
    ]
    with pytest.raises(ValueError, match="state"):
        device_state_set(device="printer-1", kind="printer", state="on fire")


def test_a_driver_bug_is_an_error_state_not_a_crash(state_dir: Path) -> None:
    class Broken(DummyPrinter):
        def print_text(self, *, name: str, text: str) -> None:
            raise ZeroDivisionError("driver bug")

    heard: list[tuple[str, ...]] = []
    ok = run_print_job(PrintJob("r1", "text"), Broken(), lambda *a: heard.append(a))
    assert ok is False
    assert device_state_get("printer-1").state == "error"
    assert heard == [("printer-1", "printer", "error", "driver bug")]


def test_the_spooler_never_waits_for_the_printer(settings: Any, state_dir: Path) -> None:
    settings.DEVICES_PRINT_INLINE = False
    release = threading.Event()

    class Slow(DummyPrinter):
        def print_text(self, *, name: str, text: str) -> None:
            release.wait(30)
            super().print_text(name=name, text=text)

    printer = Slow()
    set_printer(printer)
    try:
        spooler = PrintSpooler()
        spooler.submit(PrintJob("r1", "one"))
        spooler.submit(PrintJob("r2", "two"))
        assert printer.printed == []  # submit returned while the printer is still busy
        release.set()
        spooler.join()
        assert [name for name, _ in printer.printed] == ["r1", "r2"]  # in order
    finally:
        set_printer(None)


def test_the_simulated_terminal_follows_its_mode_file(state_dir: Path) -> None:
    terminal = SimulatedTerminal()
    assert isinstance(terminal, PaymentTerminal)
    assert terminal.authorize(amount=Decimal("5"), currency="EUR", reference="b").approved
    terminal_mode_set("decline")
    assert not terminal.authorize(amount=Decimal("5"), currency="EUR", reference="b").approved
    terminal_mode_set("offline")
    with pytest.raises(TerminalOffline):
        terminal.refund(amount=Decimal("5"), currency="EUR", reference="b")
    with pytest.raises(ValueError, match="mode"):
        terminal_mode_set("maybe")
