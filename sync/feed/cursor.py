"""The pull cursor: where a node stands in its store's change feed, opaque and tamper-evident.

A cursor names a *delta* of the feed: the changes committed after snapshot ``after`` and by
snapshot ``upto`` (PostgreSQL snapshots as text, ``xmin:xmax:xip,…``; on SQLite, whose writers
are serialised, feed versions), and the position ``(txid, version, id)`` reached inside it.
A delta is served in pages; when it is exhausted the next one starts at ``upto``. Because a
snapshot knows which transactions were still running, a change committed late by a long
transaction is served in a later delta instead of being skipped, and it holds back nobody.

The cursor is signed with the project's secret and bound to the store, so a node cannot
forge one, edit one, or use another store's.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from erp.errors import ValidationFailed

_SALT = "tillbook.sync.pull.cursor"
_VERSION = 1


class InvalidCursor(ValidationFailed):
    code = "invalid_cursor"


@dataclass(frozen=True)
class Cursor:
    store_id: int
    after: str | None = None  # snapshot (or SQLite version) already served in full
    upto: str | None = None  # end of the delta being paged, None between deltas
    position: tuple[int, int, int] | None = None  # last row served in this delta
    initial: bool = True  # the first delta of a node with no state: tombstones are skipped

    def encode(self) -> str:
        payload = {
            "v": _VERSION,
            "s": self.store_id,
            "a": self.after,
            "u": self.upto,
            "p": list(self.position) if self.position else None,
            "i": self.initial,
        }
        # A plain (untimed) signature: the same position is the same token, so an idle node's
        # answer, and its ETag, stay the same from one poll to the next.
        return signing.Signer(salt=_SALT).sign_object(payload, compress=True)

    @classmethod
    def decode(cls, token: str, *, store_id: int) -> Cursor:
        if len(token) > 4096:
            raise InvalidCursor("The cursor is too long to be one this server issued.")
        try:
            payload = signing.Signer(salt=_SALT).unsign_object(token)
        except signing.BadSignature as exc:
            raise InvalidCursor(
                "The cursor is not one this server issued (it was altered or truncated); "
                "pull without a cursor to start again."
            ) from exc
        except Exception as exc:  # a validly signed but undecodable payload cannot happen
            raise InvalidCursor("The cursor cannot be read.") from exc
        if not isinstance(payload, dict) or payload.get("v") != _VERSION:
            raise InvalidCursor("The cursor is from another protocol version; pull without one.")
        if payload.get("s") != store_id:
            raise InvalidCursor("The cursor belongs to another store.")
        after, upto, position = payload.get("a"), payload.get("u"), payload.get("p")
        if not (
            (after is None or isinstance(after, str))
            and (upto is None or isinstance(upto, str))
            and (
                position is None
                or (
                    isinstance(position, list)
                    and len(position) == 3
                    and all(isinstance(n, int) for n in position)
                )
            )
        ):
            raise InvalidCursor("The cursor cannot be read; pull without one to start again.")
        return cls(
            store_id=store_id,
            after=after,
            upto=upto,
            position=(position[0], position[1], position[2]) if position else None,
            initial=bool(payload.get("i")),
        )
