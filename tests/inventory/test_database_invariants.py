"""The database itself refuses bad catalogue rows, whatever code writes them.

Everything here writes with raw SQL, past the models and the services, so each test proves a
constraint, a trigger or an exclusion constraint rather than a Python check. Each refused
statement runs in its own savepoint so that the test can look at the table afterwards.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from inventory.barcodes import gs1_check_digit
from inventory.models import Barcode, Currency, Price, PriceList, Product
from tests.factories import (
    PriceListFactory,
    ProductFactory,
    RegisterFactory,
    StoreFactory,
    TaxRateFactory,
)

pytestmark = pytest.mark.django_db

JAN_1 = dt.date(2026, 1, 1)
JAN_31 = dt.date(2026, 1, 31)
FEB_1 = dt.date(2026, 2, 1)
FEB_28 = dt.date(2026, 2, 28)
MAR_1 = dt.date(2026, 3, 1)


def execute(sql: str, params: Sequence[Any] = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def scalar(sql: str, params: Sequence[Any] = ()) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def assert_refused(sql: str, params: Sequence[Any] = ()) -> None:
    """The statement fails with IntegrityError; its savepoint is rolled back."""
    with pytest.raises(IntegrityError), transaction.atomic():
        execute(sql, params)


INSERT_PRICE = (
    "INSERT INTO inventory_price "
    "(price_list_id, product_id, price, valid_from, valid_to, created_at, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def price_row(
    price_list: PriceList,
    product: Product,
    valid_from: dt.date,
    valid_to: dt.date | None,
    price: str = "1.99",
) -> list[Any]:
    return [price_list.pk, product.pk, Decimal(price), valid_from, valid_to]


def insert_price(*args: Any, **kwargs: Any) -> None:
    assert execute(INSERT_PRICE, price_row(*args, **kwargs)) == 1


def ranges(price_list: PriceList, product: Product) -> list[tuple[dt.date, dt.date | None]]:
    return list(
        Price.objects.filter(price_list=price_list, product=product)
        .order_by("valid_from")
        .values_list("valid_from", "valid_to")
    )


@pytest.fixture
def price_list() -> PriceList:
    return PriceListFactory(code="DE")


@pytest.fixture
def product() -> Product:
    return ProductFactory()


# --- prices: no two ranges of one SKU in one list overlap ----------------------------------------


def test_price_inside_an_existing_range_is_refused(price_list, product) -> None:
    insert_price(price_list, product, JAN_1, FEB_28)

    assert_refused(INSERT_PRICE, price_row(price_list, product, FEB_1, FEB_1))
    assert_refused(INSERT_PRICE, price_row(price_list, product, dt.date(2025, 12, 1), MAR_1))

    assert ranges(price_list, product) == [(JAN_1, FEB_28)]


def test_ranges_include_both_ends_so_touching_ranges_overlap(price_list, product) -> None:
    insert_price(price_list, product, JAN_1, JAN_31)

    # starts on the day the other ends
    assert_refused(INSERT_PRICE, price_row(price_list, product, JAN_31, FEB_28))
    # ends on the day the other starts
    assert_refused(INSERT_PRICE, price_row(price_list, product, dt.date(2025, 12, 1), JAN_1))
    # a single day equal to either end
    assert_refused(INSERT_PRICE, price_row(price_list, product, JAN_31, JAN_31))

    assert ranges(price_list, product) == [(JAN_1, JAN_31)]


def test_adjacent_ranges_on_the_next_and_previous_day_are_allowed(price_list, product) -> None:
    insert_price(price_list, product, FEB_1, FEB_28)

    insert_price(price_list, product, MAR_1, None)
    insert_price(price_list, product, JAN_1, JAN_31)

    assert ranges(price_list, product) == [(JAN_1, JAN_31), (FEB_1, FEB_28), (MAR_1, None)]


def test_open_ended_range_overlaps_everything_after_its_start(price_list, product) -> None:
    insert_price(price_list, product, FEB_1, None)

    assert_refused(INSERT_PRICE, price_row(price_list, product, dt.date(2099, 1, 1), None))
    assert_refused(
        INSERT_PRICE, price_row(price_list, product, dt.date(2030, 6, 1), dt.date(2030, 6, 30))
    )
    assert_refused(INSERT_PRICE, price_row(price_list, product, JAN_1, None))  # both open
    assert_refused(INSERT_PRICE, price_row(price_list, product, JAN_1, FEB_1))  # touches start

    insert_price(price_list, product, JAN_1, JAN_31)  # ends the day before: fine
    assert ranges(price_list, product) == [(JAN_1, JAN_31), (FEB_1, None)]


def test_same_sku_in_another_list_and_another_sku_in_this_list_are_independent(
    price_list, product
) -> None:
    other_list = PriceListFactory(code="AT")
    other_product = ProductFactory()
    insert_price(price_list, product, JAN_1, None)

    insert_price(other_list, product, JAN_1, None)
    insert_price(price_list, other_product, JAN_1, None)

    assert Price.objects.count() == 3


UPDATE_RANGE = "UPDATE inventory_price SET valid_from = %s, valid_to = %s WHERE id = %s"


def test_update_that_creates_an_overlap_is_refused(price_list, product) -> None:
    insert_price(price_list, product, JAN_1, JAN_31)
    insert_price(price_list, product, FEB_1, FEB_28)
    january, february = Price.objects.order_by("valid_from")

    assert_refused(UPDATE_RANGE, [JAN_1, FEB_1, january.pk])  # extend onto February's start
    assert_refused(UPDATE_RANGE, [JAN_1, None, january.pk])  # open the end
    assert_refused(UPDATE_RANGE, [JAN_31, FEB_28, february.pk])  # move the start back a day
    # move a range inside the other one
    assert_refused(UPDATE_RANGE, [dt.date(2026, 1, 10), dt.date(2026, 1, 20), february.pk])

    assert ranges(price_list, product) == [(JAN_1, JAN_31), (FEB_1, FEB_28)]


def test_update_of_a_row_does_not_collide_with_itself(price_list, product) -> None:
    insert_price(price_list, product, JAN_1, JAN_31)
    insert_price(price_list, product, FEB_1, None)
    january = Price.objects.get(valid_from=JAN_1)

    execute("UPDATE inventory_price SET price = %s WHERE id = %s", [Decimal("2.49"), january.pk])
    execute(UPDATE_RANGE, [dt.date(2025, 12, 1), JAN_31, january.pk])  # grow away from February

    january.refresh_from_db()
    assert (january.price, january.valid_from) == (Decimal("2.49"), dt.date(2025, 12, 1))


SHIFT_END = "UPDATE inventory_price SET valid_to = %s WHERE id = %s"
SHIFT_START = "UPDATE inventory_price SET valid_from = %s WHERE id = %s"


def _two_adjacent_ranges(price_list: PriceList, product: Product) -> tuple[int, int]:
    insert_price(price_list, product, JAN_1, JAN_31)
    insert_price(price_list, product, FEB_1, None)
    january, february = Price.objects.order_by("valid_from").values_list("pk", flat=True)
    return january, february


def test_immediate_constraint_refuses_the_first_step_of_a_shift(price_list, product) -> None:
    # Moving the boundary from Jan 31/Feb 1 to Feb 14/15: lengthening January first overlaps
    # February until February is shortened. Without deferral (PostgreSQL's default here, and
    # always for SQLite's row-level trigger) the first statement fails.
    january, _february = _two_adjacent_ranges(price_list, product)

    assert_refused(SHIFT_END, [dt.date(2026, 2, 14), january])

    assert ranges(price_list, product) == [(JAN_1, JAN_31), (FEB_1, None)]


def _committed_scenery() -> tuple[PriceList, Product]:
    # A transactional test may follow another that flushed the migrations' data (currencies):
    # make what this one needs rather than count on it.
    eur, _ = Currency.objects.get_or_create(code="EUR", defaults={"name": "Euro", "minor_units": 2})
    return PriceListFactory(code="DE", currency=eur), ProductFactory()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_deferred_constraint_lets_one_transaction_shift_two_ranges() -> None:
    price_list, product = _committed_scenery()
    january, february = _two_adjacent_ranges(price_list, product)

    with transaction.atomic():
        execute("SET CONSTRAINTS price_validity_no_overlap DEFERRED")
        execute(SHIFT_END, [dt.date(2026, 2, 14), january])  # overlaps February for now
        execute(SHIFT_START, [dt.date(2026, 2, 15), february])

    assert ranges(price_list, product) == [
        (JAN_1, dt.date(2026, 2, 14)),
        (dt.date(2026, 2, 15), None),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_deferred_constraint_still_refuses_an_overlap_left_at_commit() -> None:
    price_list, product = _committed_scenery()
    january, february = _two_adjacent_ranges(price_list, product)

    def shift_leaving_an_overlap() -> None:
        with transaction.atomic():
            execute("SET CONSTRAINTS price_validity_no_overlap DEFERRED")
            execute(SHIFT_END, [dt.date(2026, 2, 14), january])
            execute(SHIFT_START, [dt.date(2026, 2, 10), february])  # still overlapping
            # no error yet: the check waits for the commit at the end of this block

    with pytest.raises(IntegrityError, match="price_validity_no_overlap"):
        shift_leaving_an_overlap()

    assert ranges(price_list, product) == [(JAN_1, JAN_31), (FEB_1, None)]
    assert connection.get_autocommit()  # the failed commit left the connection usable
    insert_price(price_list, product, dt.date(2025, 1, 1), dt.date(2025, 12, 31))


# --- barcodes ------------------------------------------------------------------------------------

INSERT_BARCODE = (
    "INSERT INTO inventory_barcode (code, product_id, created_at) "
    "VALUES (%s, %s, CURRENT_TIMESTAMP)"
)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "code",
    [
        "4006381333932",  # EAN-13, check digit should be 1
        "96385075",  # EAN-8, should be 4
        "036000291453",  # UPC-A, should be 2
        "".join(chr(ord(c) + 0xFEE0) for c in "036000291452"),  # fullwidth digits
        "40063813339a",
    ],
)
def test_barcode_with_a_bad_check_digit_is_refused_by_postgres(product, code: str) -> None:
    assert_refused(INSERT_BARCODE, [code, product.pk])
    assert not Barcode.objects.exists()


@pytest.mark.postgres
def test_postgres_check_digit_function_agrees_with_python() -> None:
    rng = random.Random(20260101)
    codes = ["4006381333931", "96385074", "73513537", "036000291452", "012345678905"]
    for length in (8, 12, 13):
        for _ in range(100):
            body = "".join(rng.choice("0123456789") for _ in range(length - 1))
            codes.append(body + str(gs1_check_digit(body)))
            codes.append(body + str((gs1_check_digit(body) + rng.randint(1, 9)) % 10))
    for code in codes:
        expected = gs1_check_digit(code[:-1]) == int(code[-1])
        assert scalar("SELECT tillbook_gtin_valid(%s)", [code]) is expected, code


def test_barcode_with_a_good_check_digit_is_stored(product) -> None:
    execute(INSERT_BARCODE, ["4006381333931", product.pk])
    execute(INSERT_BARCODE, ["96385074", product.pk])
    execute(INSERT_BARCODE, ["036000291452", product.pk])

    assert sorted(product.barcodes.values_list("code", flat=True)) == [
        "036000291452",
        "4006381333931",
        "96385074",
    ]


@pytest.mark.parametrize("code", ["4006381", "400638133", "40063813339", ""])
def test_barcode_of_a_wrong_length_is_refused(product, code: str) -> None:
    assert_refused(INSERT_BARCODE, [code, product.pk])
    assert not Barcode.objects.exists()


def test_duplicate_barcode_is_refused_even_for_another_product(product) -> None:
    execute(INSERT_BARCODE, ["4006381333931", product.pk])

    assert_refused(INSERT_BARCODE, ["4006381333931", product.pk])
    assert_refused(INSERT_BARCODE, ["4006381333931", ProductFactory().pk])

    assert Barcode.objects.count() == 1


# --- amounts, ranges, rates and units ------------------------------------------------------------


@pytest.mark.parametrize("amount", ["-0.0001", "-1", "-1999.99"])
def test_negative_price_is_refused(price_list, product, amount: str) -> None:
    assert_refused(INSERT_PRICE, price_row(price_list, product, JAN_1, None, price=amount))
    assert not Price.objects.exists()


def test_zero_price_is_allowed(price_list, product) -> None:
    insert_price(price_list, product, JAN_1, None, price="0")
    assert Price.objects.get().price == 0


def test_range_ending_before_it_starts_is_refused(price_list, product) -> None:
    assert_refused(INSERT_PRICE, price_row(price_list, product, FEB_1, JAN_31))
    insert_price(price_list, product, FEB_1, FEB_1)  # a one-day range is fine
    february = Price.objects.get()

    assert_refused(UPDATE_RANGE, [FEB_1, JAN_31, february.pk])

    assert ranges(price_list, product) == [(FEB_1, FEB_1)]


def test_two_prices_with_the_same_start_are_refused(price_list, product) -> None:
    insert_price(price_list, product, JAN_1, JAN_1)
    assert_refused(INSERT_PRICE, price_row(price_list, product, JAN_1, JAN_1))
    assert Price.objects.count() == 1


INSERT_TAX_RATE = (
    "INSERT INTO inventory_taxrate (code, name, rate, inclusive, active) "
    "VALUES (%s, %s, %s, %s, %s)"
)


@pytest.mark.parametrize("rate", ["100", "100.0000", "250", "-0.0001", "-19"])
def test_tax_rate_outside_zero_to_under_a_hundred_is_refused(rate: str) -> None:
    assert_refused(INSERT_TAX_RATE, ["BAD", "Bad", Decimal(rate), True, True])
    assert scalar("SELECT COUNT(*) FROM inventory_taxrate WHERE code = 'BAD'") == 0


@pytest.mark.parametrize("rate", ["0", "8.875", "99.9999"])
def test_tax_rate_in_range_is_stored(rate: str) -> None:
    execute(INSERT_TAX_RATE, ["OK", "Fine", Decimal(rate), True, True])
    assert scalar("SELECT COUNT(*) FROM inventory_taxrate WHERE code = 'OK'") == 1


INSERT_PRODUCT = (
    "INSERT INTO inventory_product "
    "(sku, name, unit, weighed, active, cost, created_at, updated_at, tax_rate_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, %s)"
)


def product_row(sku: str, *, unit: str = "each", weighed: bool = False, cost: str = "0.50"):
    return [sku, f"Product {sku}", unit, weighed, True, Decimal(cost), TaxRateFactory().pk]


def test_weighed_product_sold_by_the_piece_is_refused() -> None:
    assert_refused(INSERT_PRODUCT, product_row("APPLES", unit="each", weighed=True))
    execute(INSERT_PRODUCT, product_row("APPLES", unit="kg", weighed=True))
    execute(INSERT_PRODUCT, product_row("BAGGED", unit="kg", weighed=False))
    apples = Product.objects.get(sku="APPLES")

    assert_refused("UPDATE inventory_product SET unit = 'each' WHERE id = %s", [apples.pk])

    assert Product.objects.get(sku="APPLES").unit == "kg"


def test_unknown_unit_is_refused() -> None:
    assert_refused(INSERT_PRODUCT, product_row("BOXED", unit="box"))
    assert not Product.objects.filter(sku="BOXED").exists()


@pytest.mark.parametrize("cost", ["-0.0001", "-5"])
def test_negative_cost_is_refused(cost: str) -> None:
    assert_refused(INSERT_PRODUCT, product_row("CHEAP", cost=cost))
    execute(INSERT_PRODUCT, product_row("FREE", cost="0"))
    free = Product.objects.get(sku="FREE")

    assert_refused("UPDATE inventory_product SET cost = %s WHERE id = %s", [Decimal(cost), free.pk])

    assert list(Product.objects.values_list("sku", "cost")) == [("FREE", Decimal("0"))]


def test_duplicate_sku_is_refused() -> None:
    execute(INSERT_PRODUCT, product_row("MILK-1L"))
    assert_refused(INSERT_PRODUCT, product_row("MILK-1L"))
    assert Product.objects.filter(sku="MILK-1L").count() == 1


INSERT_REGISTER = (
    "INSERT INTO stores_register (store_id, code, name, active, created_at) "
    "VALUES (%s, %s, %s, %s, CURRENT_TIMESTAMP)"
)


def test_duplicate_register_code_in_one_store_is_refused_but_allowed_in_another() -> None:
    register = RegisterFactory(code="R1")
    other_store = StoreFactory()

    assert_refused(INSERT_REGISTER, [register.store_id, "R1", "Till 1 again", True])
    execute(INSERT_REGISTER, [other_store.pk, "R1", "Till 1", True])

    assert scalar("SELECT COUNT(*) FROM stores_register WHERE code = 'R1'") == 2
    assert register.store.registers.count() == 1
