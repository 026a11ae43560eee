"""GS1 check digits of the codes a till scans (EAN-13, EAN-8, UPC-A), against published codes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from inventory.barcodes import barcode_symbology, gs1_check_digit
from inventory.models import validate_barcode


def fullwidth(text: str) -> str:
    """The same characters in their fullwidth forms (U+FF10.. for digits)."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


# Codes printed in standards, books and on real packs, with their published check digits.
PUBLISHED = [
    ("4006381333931", "EAN-13"),  # Wikipedia's EAN-13 example (Stabilo pen)
    ("5901234123457", "EAN-13"),  # GS1 / Wikipedia EAN-13 illustration
    ("9780306406157", "EAN-13"),  # ISBN-13 978-0-306-40615-7 (Wikipedia ISBN example)
    ("9783161484100", "EAN-13"),  # ISBN 978-3-16-148410-0 (the ISBN agency's sample)
    ("9780131103627", "EAN-13"),  # ISBN of Kernighan & Ritchie, The C Programming Language
    ("5449000000996", "EAN-13"),  # Coca-Cola 330 ml can
    ("3017620422003", "EAN-13"),  # Nutella 400 g (Open Food Facts' best-known product)
    ("96385074", "EAN-8"),  # Wikipedia's EAN-8 example
    ("73513537", "EAN-8"),  # Wikipedia's EAN-8 check-digit example
    ("036000291452", "UPC-A"),  # Wikipedia's UPC-A example
    ("012345678905", "UPC-A"),  # the classic UPC-A test symbol
]


@pytest.mark.parametrize(("code", "symbology"), PUBLISHED)
def test_published_code_is_valid_with_its_symbology(code: str, symbology: str) -> None:
    assert barcode_symbology(code) == symbology
    assert gs1_check_digit(code[:-1]) == int(code[-1])
    validate_barcode(code)  # the model's validator agrees


@pytest.mark.parametrize(("code", "symbology"), PUBLISHED)
def test_every_wrong_check_digit_is_refused_naming_the_expected_digit(
    code: str, symbology: str
) -> None:
    body, right = code[:-1], code[-1]
    for wrong in "0123456789".replace(right, ""):
        with pytest.raises(ValueError, match=f"{symbology} should be {right}, not {wrong}"):
            barcode_symbology(body + wrong)


def test_model_validator_reports_the_check_digit_as_a_validation_error() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_barcode("4006381333932")
    assert excinfo.value.code == "invalid_barcode"
    assert "should be 1, not 2" in excinfo.value.messages[0]


@pytest.mark.parametrize(
    "code",
    [
        "4006381",  # 7
        "400638133",  # 9
        "40063813339",  # 11
        "40063813339312",  # 14 (a GTIN-14 is not scanned at the till)
        "1",
    ],
)
def test_wrong_length_is_refused(code: str) -> None:
    with pytest.raises(ValueError, match="8 \\(EAN-8\\), 12 \\(UPC-A\\) or 13 \\(EAN-13\\)"):
        barcode_symbology(code)


@pytest.mark.parametrize(
    "code",
    [
        "",
        "400638133393A",
        "A006381333931",
        "4006381 333931",
        " 4006381333931",
        "4006381333931 ",
        "4006381333931\n",
        "-400638133393",
        "+400638133393",
        "4006381333.93",
        fullwidth("4006381333931"),  # str.isdigit() is True for these
        "٤٠٠٦٣٨١٣٣٣٩٣١",  # Arabic-Indic digits
        "400638133393¹",  # superscript one: isdigit() but not int()-able
        "96385" + fullwidth("0") + "74",  # one fullwidth digit in an EAN-8
    ],
)
def test_anything_but_ascii_digits_is_refused(code: str) -> None:
    with pytest.raises(ValueError, match="digits only"):
        barcode_symbology(code)


def test_model_validator_refuses_fullwidth_digits() -> None:
    with pytest.raises(ValidationError, match="digits only"):
        validate_barcode(fullwidth("4006381333931"))


@given(body=st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_any_twelve_digit_body_has_exactly_one_valid_check_digit(body: str) -> None:
    check = gs1_check_digit(body)
    assert 0 <= check <= 9
    assert barcode_symbology(body + str(check)) == "EAN-13"
    for wrong in set("0123456789") - {str(check)}:
        with pytest.raises(ValueError, match=f"should be {check}, not {wrong}"):
            barcode_symbology(body + wrong)


@given(body=st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_upc_a_is_an_ean_13_with_a_leading_zero(body: str) -> None:
    # GS1: a UPC-A read as GTIN-13 gains a leading 0 and keeps its check digit.
    assert gs1_check_digit(body) == gs1_check_digit("0" + body)
