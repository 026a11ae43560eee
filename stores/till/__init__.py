"""The till of a store node: services (``services``), reads (``selectors``), prices, tax and
rounding (``pricing``), cashier sign-in (``auth``), receipts (``receipts``), the local till API
(``api``) and the cashier page (``views``). Node mode only; see ``../shared/design/till-api.md``.
"""
