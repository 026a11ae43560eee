from __future__ import annotations

import django_filters as filters

from stores.models import Cashier


class CashierFilter(filters.FilterSet):
    store = filters.CharFilter(field_name="stores__code", label="Code of a store they work in")

    class Meta:
        model = Cashier
        fields = ["role", "active"]
