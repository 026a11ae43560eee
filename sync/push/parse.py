"""First stage of a push: bytes to checked events, before any database access.

Whole-batch problems raise an :class:`~erp.errors.ApplicationError` (``malformed_json``,
``invalid_batch``, ``batch_too_large``); a problem with one event only marks that event
``rejected`` and keeps its raw bytes for the dead-letter list.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
from django.conf import settings

from erp.errors import ApplicationError, PayloadTooLarge
from sync.push import schema


class MalformedJson(ApplicationError):
    status = 400
    code = "malformed_json"
    default_message = "The body is not valid JSON."


class InvalidBatch(ApplicationError):
    status = 400
    code = "invalid_batch"
    default_message = "The body is not a batch: it needs batch_id and a list of events."


@dataclass(slots=True)
class Incoming:
    """One event of the request, as far as it could be understood (slots: one per event)."""

    position: int
    raw: bytes
    event_id: str | None = None
    envelope: schema.Envelope | None = None
    data: Any = None
    canonical: bytes = b""
    content_hash: str = ""
    register_code: str | None = None
    seq: int | None = None
    error: tuple[str, str] | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.error is None


@dataclass
class ParsedBatch:
    batch_id: str
    node_time: Any
    events: list[Incoming]
    content_hash: str


_decoder = msgspec.json.Decoder(schema.Batch)
_any = msgspec.json.Decoder()
_sorted = msgspec.json.Encoder(order="sorted")


def _message(exc: msgspec.ValidationError) -> str:
    return str(exc).replace("`", "")


def parse_batch(body: bytes) -> ParsedBatch:
    if len(body) > settings.SYNC_MAX_BYTES:
        raise PayloadTooLarge(
            f"The batch is {len(body)} bytes; at most {settings.SYNC_MAX_BYTES} are accepted.",
            code="batch_too_large",
        )
    try:
        batch = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidBatch(f"Not a valid batch: {_message(exc)}.") from exc
    except msgspec.DecodeError as exc:
        raise MalformedJson(f"The body is not valid JSON: {exc}.") from exc
    except RecursionError as exc:
        raise MalformedJson("The body nests arrays or objects too deeply to be read.") from exc
    if len(batch.events) > settings.SYNC_MAX_EVENTS:
        raise PayloadTooLarge(
            f"The batch has {len(batch.events)} events; at most {settings.SYNC_MAX_EVENTS} "
            "are accepted.",
            code="batch_too_large",
        )
    events = [parse_event(position, bytes(raw)) for position, raw in enumerate(batch.events)]
    # The batch's identity is its events' content; node_time is a clock reading that a retry
    # may refresh, so it is not part of "the same body".
    digest = hashlib.sha256(str(batch.batch_id).encode())
    for event in events:
        digest.update(event.content_hash.encode() if event.content_hash else event.raw)
    return ParsedBatch(
        batch_id=str(batch.batch_id),
        node_time=batch.node_time,
        events=events,
        content_hash=digest.hexdigest(),
    )


def parse_event(position: int, raw: bytes) -> Incoming:
    incoming = Incoming(position=position, raw=raw)
    try:
        value = _any.decode(raw)
    except msgspec.DecodeError as exc:
        # Only a corrected dead letter gets here: events of a pushed batch are decoded JSON.
        incoming.error = ("invalid_event", f"The event is not valid JSON: {exc}.")
        return incoming
    except msgspec.ValidationError as exc:  # valid syntax, but a number such as 1e400
        incoming.error = ("invalid_event", f"The event is not valid: {_message(exc)}.")
        return incoming
    except RecursionError:
        incoming.error = ("invalid_event", "The event nests arrays or objects too deeply.")
        return incoming
    if isinstance(value, dict):
        event_id, register, seq = value.get("event_id"), value.get("register"), value.get("seq")
        incoming.event_id = event_id if isinstance(event_id, str) else None
        incoming.register_code = register if isinstance(register, str) else None
        # Kept on the dead letter, in a bigint column: an out-of-range seq is not kept.
        in_range = isinstance(seq, int) and not isinstance(seq, bool) and -(2**63) <= seq < 2**63
        incoming.seq = seq if in_range else None
        incoming.canonical = _sorted.encode(value)
        incoming.content_hash = hashlib.sha256(incoming.canonical).hexdigest()
    else:
        incoming.error = ("invalid_event", "An event is a JSON object.")
        return incoming
    try:
        envelope = msgspec.convert(value, schema.Envelope)
    except msgspec.ValidationError as exc:
        incoming.error = ("invalid_event", f"The event is not valid: {_message(exc)}.")
        return incoming
    try:
        data = _data_convert(envelope.type, envelope.data)
    except msgspec.ValidationError as exc:
        # msgspec's path starts at the data object; name the place within the event.
        text = _message(exc)
        if " - at $" in text:
            text = text.replace(" - at $", " - at $.data")
        else:
            text = f"{text} - at $.data"
        incoming.error = ("invalid_event", f"The event is not valid: {text}.")
        return incoming
    problem = _semantic_problem(envelope, data, incoming.canonical)
    if problem:
        incoming.error = ("invalid_event", problem)
        return incoming
    incoming.envelope = envelope
    incoming.data = data
    incoming.event_id = str(envelope.event_id)
    return incoming


def _data_convert(kind: str, value: dict[str, Any]) -> Any:
    """An event's data as its type's structure; raises msgspec.ValidationError.

    Sales and returns take the fast path (see ``schema.LOOSE_DATA_TYPES``); on any failure
    there, the strict conversion raises the error that names the field.
    """
    loose = schema.LOOSE_DATA_TYPES.get(kind)
    if loose is not None:
        loose_type, decimals_valid = loose
        with contextlib.suppress(msgspec.ValidationError):
            data = msgspec.convert(value, loose_type)
            if decimals_valid(data):
                return data
    return msgspec.convert(value, schema.DATA_TYPES[kind])


# A NUL character, escaped in canonical JSON (an even run of backslashes before it is text).
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _semantic_problem(envelope: schema.Envelope, data: Any, canonical: bytes) -> str | None:
    # The plain substring test is ~100x cheaper than the regex and almost always false.
    if b"\\u0000" in canonical and _NUL.search(canonical):
        # PostgreSQL text cannot hold NUL: the event would fail the whole batch when stored.
        return "The event is not valid: a string contains a NUL character."
    if isinstance(data, schema.SaleData):
        numbers = [line.line_no for line in data.lines]
        if len(set(numbers)) != len(numbers):
            return "The event is not valid: line_no repeats within the sale."
    if isinstance(data, schema.StockCountData):
        skus = [line.sku for line in data.lines]
        if len(set(skus)) != len(skus):
            return "The event is not valid: a SKU is counted twice in one stock count."
    if isinstance(data, schema.SessionCloseData) and data.last_seq < data.first_seq:
        return "The event is not valid: last_seq is before first_seq."
    return None
