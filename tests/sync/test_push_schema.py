"""The push schema's fast path for sales and returns: it accepts and refuses exactly what the
strict structures do, and refuses with the same message (no database needed)."""

from __future__ import annotations

import copy
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.push import schema
from sync.push.parse import _data_convert

# The strict patterns, as msgspec applies them (re.search).
MONEY = re.compile(schema.Money.__metadata__[0].pattern)
QTY = re.compile(schema.Qty.__metadata__[0].pattern)

# Text near the edge of a decimal string: digits, signs, points, the run separator, exponents,
# spaces, newlines and a non-ASCII digit (which Python's \d, unlike [0-9], would accept).
decimal_like = st.text(alphabet="0123456789-.,e +\n\u0661", max_size=18)


@given(st.lists(decimal_like, min_size=1, max_size=8))
def test_a_run_of_values_matches_when_each_matches(values: list[str]) -> None:
    assert schema._runs_match(schema._MONEY_RUN, values) == all(MONEY.search(v) for v in values)
    assert schema._runs_match(schema._QTY_RUN, values) == all(QTY.search(v) for v in values)


def _shape(cls: type[msgspec.Struct]) -> list[tuple[str, Any]]:
    return [(f.name, f.default) for f in msgspec.structs.fields(cls)]


@pytest.mark.parametrize("kind", list(schema.LOOSE_DATA_TYPES))
def test_the_loose_structures_mirror_the_strict_ones(kind: str) -> None:
    strict = schema.DATA_TYPES[kind]
    loose, _ = schema.LOOSE_DATA_TYPES[kind]
    assert issubclass(loose, strict)
    assert _shape(loose) == _shape(strict)
    for strict_part in (schema.SaleLine, schema.SaleTender, schema.Totals):
        loose_part = schema._loose_struct(strict_part)
        assert issubclass(loose_part, strict_part)
        assert _shape(loose_part) == _shape(strict_part)
        # Every decimal string of the part is length-bounded text, nothing else changed.
        for a, b in zip(
            msgspec.structs.fields(strict_part), msgspec.structs.fields(loose_part), strict=True
        ):
            if a.type in (schema.Money, schema.Qty):
                assert b.type == schema._DECIMAL_TEXT
            else:
                assert a.type == b.type


SALE: dict[str, Any] = {
    "receipt_no": "R-1",
    "currency": "EUR",
    "lines": [
        {"line_no": 1, "sku": "A", "qty": "2", "unit_price": "1.99", "tax_code": "STD",
         "line_total": "3.98"},
        {"line_no": 2, "sku": "B", "qty": "0.250", "unit_price": "12.00", "tax_code": "STD",
         "line_total": "3.00", "discount": "0.00"},
    ],
    "tenders": [{"method": "cash", "amount": "6.98", "change": "0.00"}],
    "totals": {"net": "5.87", "tax": "1.11", "gross": "6.98"},
}  # fmt: skip


def _with(*changes: tuple[tuple[str | int, ...], Any]) -> dict[str, Any]:
    value = copy.deepcopy(SALE)
    for path, new in changes:
        target: Any = value
        for step in path[:-1]:
            target = target[step]
        if new is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = new
    return value


CASES = {
    "valid": _with(),
    "valid, negative and longest": _with(
        (("lines", 0, "qty"), "-1234567890.125"), (("totals", "net"), "-1234567890.1234")
    ),
    "qty with four places": _with((("lines", 1, "qty"), "0.2500")),
    "exponent": _with((("totals", "gross"), "1e2")),
    "comma inside": _with((("lines", 0, "unit_price"), "1,99")),
    "two values in one": _with((("tenders", 0, "change"), "0,0")),
    "too long": _with((("lines", 0, "line_total"), "12345678901234567")),
    "JSON number": _with((("lines", 0, "qty"), 2)),
    "a final newline": _with((("lines", 0, "qty"), "2\n")),
    # Two problems: the strict conversion names the first in field order, and so must the
    # fast path (a bad decimal in line 0, a missing SKU in line 1).
    "bad decimal, then a missing field": _with(
        (("lines", 0, "qty"), "two"), (("lines", 1, "sku"), KeyError)
    ),
    "missing field, then a bad decimal": _with(
        (("lines", 0, "sku"), KeyError), (("lines", 1, "qty"), "two")
    ),
}


def _outcome(convert: Any) -> tuple[str, Any]:
    try:
        return ("ok", msgspec.to_builtins(convert()))
    except msgspec.ValidationError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("kind", list(schema.LOOSE_DATA_TYPES))
@pytest.mark.parametrize("case", list(CASES))
def test_the_fast_path_decides_and_words_as_the_strict_one(kind: str, case: str) -> None:
    value = CASES[case]
    fast = _outcome(lambda: _data_convert(kind, value))
    strict = _outcome(lambda: msgspec.convert(value, schema.DATA_TYPES[kind]))
    assert fast == strict
    assert (fast[0] == "ok") == case.startswith("valid")
    if fast[0] == "ok":
        assert isinstance(_data_convert(kind, value), schema.DATA_TYPES[kind])
