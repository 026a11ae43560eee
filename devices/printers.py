"""Receipt printers: a ``Printer`` protocol and the backends the node ships with.

- ``file``: each receipt is written to its own text file in ``DEVICES_PRINTER_PATH`` (a
  stand-in for an ESC/POS printer, and a journal of what was printed). A missing or
  unwritable directory is an ``offline`` printer; a ``PAPER_OUT`` file in it makes the
  printer report ``paper_out`` (how an operator, or a test, simulates the real thing).
- ``dummy``: keeps receipts in memory; its state is set by whoever holds it (tests).

Printing is never part of a sale: ``PrintSpooler`` runs jobs after the sale has committed, in
a worker thread (or inline when ``DEVICES_PRINT_INLINE`` is set, for tests), and a failure
only changes the printer's recorded state.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from django.conf import settings

from devices.state import device_state_set

logger = logging.getLogger(__name__)


class PrinterError(Exception):
    """The printer did not print; ``state`` is what it is now (offline, paper_out, …)."""

    def __init__(self, state: str, detail: str) -> None:
        super().__init__(detail)
        self.state = state
        self.detail = detail


@runtime_checkable
class Printer(Protocol):
    device: str

    def print_text(self, *, name: str, text: str) -> None:
        """Print ``text`` (``name`` identifies the job: a receipt number); raise PrinterError."""
        ...

    def probe(self) -> tuple[str, str]:
        """The printer's state and a detail, without printing."""
        ...


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class FilePrinter:
    def __init__(self, directory: Path, device: str = "printer-1") -> None:
        self.directory = Path(directory)
        self.device = device

    def probe(self) -> tuple[str, str]:
        if not self.directory.is_dir():
            return "offline", f"{self.directory} does not exist"
        if (self.directory / "PAPER_OUT").exists():
            return "paper_out", "out of paper"
        return "ok", ""

    def print_text(self, *, name: str, text: str) -> None:
        state, detail = self.probe()
        if state != "ok":
            raise PrinterError(state, detail)
        target = self.directory / f"{_SAFE.sub('_', name)}.txt"
        n = 1
        while target.exists():  # a reprint is a second copy, never an overwrite
            n += 1
            target = self.directory / f"{_SAFE.sub('_', name)}.{n}.txt"
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise PrinterError("error", f"cannot write {target}: {exc}") from exc


class DummyPrinter:
    def __init__(self, device: str = "printer-1") -> None:
        self.device = device
        self.printed: list[tuple[str, str]] = []
        self.state = "ok"
        self.detail = ""

    def probe(self) -> tuple[str, str]:
        return self.state, self.detail

    def print_text(self, *, name: str, text: str) -> None:
        if self.state != "ok":
            raise PrinterError(self.state, self.detail or self.state)
        self.printed.append((name, text))


_printer: Printer | None = None
_printer_lock = threading.Lock()


def get_printer() -> Printer:
    """The configured printer (``DEVICES_PRINTER``: file or dummy), one per process."""
    global _printer
    with _printer_lock:
        if _printer is None:
            kind = getattr(settings, "DEVICES_PRINTER", "file")
            if kind == "dummy":
                _printer = DummyPrinter()
            else:
                path = getattr(settings, "DEVICES_PRINTER_PATH", "") or (
                    settings.DATA_DIR / "receipts"
                )
                Path(path).mkdir(parents=True, exist_ok=True)
                _printer = FilePrinter(Path(path))
        return _printer


def set_printer(printer: Printer | None) -> None:
    """Replace the process's printer (tests; a driver chosen at start-up)."""
    global _printer
    with _printer_lock:
        _printer = printer


SPOOLER_THREAD = "print-spooler"
StateListener = Callable[[str, str, str, str], None]  # device, kind, state, detail


@dataclass(frozen=True)
class PrintJob:
    name: str
    text: str


def run_print_job(job: PrintJob, printer: Printer, on_change: StateListener | None) -> bool:
    """Print one job; record the printer's state; tell ``on_change`` when it changed."""
    try:
        printer.print_text(name=job.name, text=job.text)
        state, detail = "ok", ""
    except PrinterError as exc:
        state, detail = exc.state, exc.detail
        logger.warning("printer %s: %s (%s not printed)", printer.device, detail, job.name)
    except Exception as exc:  # a driver bug must not take the spooler down
        state, detail = "error", str(exc)
        logger.exception("printer %s failed on %s", printer.device, job.name)
    changed = device_state_set(device=printer.device, kind="printer", state=state, detail=detail)
    if changed and on_change is not None:
        try:
            on_change(printer.device, "printer", state, detail)
        except Exception:
            logger.exception("reporting the state of %s failed", printer.device)
    return state == "ok"


class PrintSpooler:
    """One worker thread per process that prints jobs in order; ``submit`` never waits."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[PrintJob, StateListener | None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: PrintJob, on_change: StateListener | None = None) -> None:
        if getattr(settings, "DEVICES_PRINT_INLINE", False):
            run_print_job(job, get_printer(), on_change)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=SPOOLER_THREAD, daemon=True)
                self._thread.start()
        self._queue.put((job, on_change))

    def _run(self) -> None:
        while True:
            job, on_change = self._queue.get()
            try:
                run_print_job(job, get_printer(), on_change)
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Wait until every submitted job has been tried (tests, shutdown)."""
        self._queue.join()


spooler = PrintSpooler()
