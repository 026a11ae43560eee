"""GS1 check digits for the barcodes a till scans: EAN-13, EAN-8 and UPC-A (GTIN-13/8/12)."""

from __future__ import annotations

GTIN_LENGTHS = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13"}


def gs1_check_digit(body: str) -> int:
    """The check digit for ``body`` (the code without its last digit).

    Weights 3 and 1 alternate from the rightmost digit of the body.
    """
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def barcode_symbology(code: str) -> str:
    """The symbology of a valid code, or ``ValueError`` saying what is wrong with it."""
    if not code.isascii() or not code.isdigit():
        raise ValueError("A barcode has digits only.")
    kind = GTIN_LENGTHS.get(len(code))
    if kind is None:
        raise ValueError("A barcode has 8 (EAN-8), 12 (UPC-A) or 13 (EAN-13) digits.")
    expected = gs1_check_digit(code[:-1])
    if int(code[-1]) != expected:
        raise ValueError(f"Check digit of this {kind} should be {expected}, not {code[-1]}.")
    return kind
