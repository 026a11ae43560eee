"""factory_boy factories for master data. They write through the ORM directly: tests of the
services and the API create their subjects through those; factories only build the scenery."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User

from inventory.barcodes import gs1_check_digit
from inventory.models import Barcode, Currency, Price, PriceList, Product, StockLocation, TaxRate
from stores.models import Register, Store


def ean13(n: int, prefix: str = "400") -> str:
    body = f"{prefix}{n:0{12 - len(prefix)}d}"
    return body + str(gs1_check_digit(body))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))


class TaxRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaxRate
        django_get_or_create = ("code",)

    code = "STD"
    name = "Standard rate"
    rate = Decimal("19.0000")
    inclusive = True


class StockLocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StockLocation

    code = factory.Sequence(lambda n: f"LOC{n:03d}")
    name = factory.LazyAttribute(lambda o: f"Location {o.code}")
    kind = StockLocation.Kind.WAREHOUSE


class PriceListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriceList
        django_get_or_create = ("code",)

    code = "DE"
    name = "Germany"
    currency = factory.LazyFunction(lambda: Currency.objects.get(code="EUR"))


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    code = factory.Sequence(lambda n: f"S{n:02d}")
    name = factory.LazyAttribute(lambda o: f"Store {o.code}")
    timezone = "Europe/Berlin"
    currency = factory.LazyFunction(lambda: Currency.objects.get(code="EUR"))
    price_list = factory.SubFactory(PriceListFactory)
    stock_location = factory.SubFactory(
        StockLocationFactory, code=factory.SelfAttribute("..code"), kind=StockLocation.Kind.STORE
    )


class RegisterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Register

    store = factory.SubFactory(StoreFactory)
    code = factory.Sequence(lambda n: f"R{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    tax_rate = factory.SubFactory(TaxRateFactory)
    cost = Decimal("0.50")


class BarcodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Barcode

    product = factory.SubFactory(ProductFactory)
    code = factory.Sequence(lambda n: ean13(n))


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Price

    price_list = factory.SubFactory(PriceListFactory)
    product = factory.SubFactory(ProductFactory)
    price = Decimal("1.99")
    valid_from = dt.date(2026, 1, 1)
    valid_to = None


def _pin_hash(pin: str) -> str:
    from django.contrib.auth.hashers import make_password

    return make_password(pin)


class CashierFactory(factory.django.DjangoModelFactory):
    """A cashier whose PIN is ``pin`` (default 1234); ``stores=[...]`` adds memberships."""

    class Meta:
        model = "stores.Cashier"
        skip_postgeneration_save = True
        exclude = ("pin",)

    code = factory.Sequence(lambda n: f"C{n:03d}")
    name = factory.Sequence(lambda n: f"Cashier {n}")
    role = "cashier"
    pin = "1234"
    pin_hash = factory.LazyAttribute(lambda o: _pin_hash(o.pin))

    @factory.post_generation
    def stores(self, create: bool, extracted: list[Store] | None, **kwargs: object) -> None:
        from stores.models import CashierStore

        if create and extracted:
            for store in extracted:
                CashierStore.objects.create(cashier=self, store=store)
