"""Device state as the node's processes last saw it: one small JSON file per device.

Files, not database rows: a printer fails in the print worker after the sale has committed,
and recording that must never wait on (or take) the database's write lock that the next sale
needs. Every process of the node (web workers, the agent) reads the same directory, and a
write replaces the file atomically (``os.replace``), so a reader never sees half a state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings

KINDS = ("printer", "scale", "scanner", "drawer", "terminal")
STATES = ("ok", "offline", "paper_out", "cover_open", "error")


@dataclass(frozen=True)
class DeviceState:
    device: str
    kind: str
    state: str
    detail: str = ""
    since: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def state_dir() -> Path:
    return Path(getattr(settings, "DEVICES_STATE_DIR", "") or settings.DATA_DIR / "devices")


def _path(device: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in device)
    return state_dir() / f"{safe}.json"


def device_state_get(device: str) -> DeviceState | None:
    try:
        raw = json.loads(_path(device).read_text())
    except (OSError, ValueError):
        return None
    try:
        return DeviceState(**raw)
    except TypeError:
        return None


def device_state_set(*, device: str, kind: str, state: str, detail: str = "") -> bool:
    """Record ``device``'s state; returns whether that is news to report: a change of state,
    or a first state that is not ``ok``."""
    if kind not in KINDS:
        raise ValueError(f"unknown device kind {kind!r}")
    if state not in STATES:
        raise ValueError(f"unknown device state {state!r}")
    old = device_state_get(device)
    if old is not None and (old.kind, old.state, old.detail) == (kind, state, detail):
        return False
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    new = DeviceState(device=device, kind=kind, state=state, detail=detail[:500], since=now)
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".state-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(new), handle)
        os.replace(tmp, _path(device))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # A device first seen working is no news; any other first state, or a change, is.
    return (state != "ok") if old is None else (old.state != state or old.kind != kind)


def device_states() -> list[DeviceState]:
    directory = state_dir()
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.json")):
        state = device_state_get(path.stem)
        if state is not None:
            found.append(state)
    return found
