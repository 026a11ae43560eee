"""OpenAPI description of the till's cashier authentication (imported with the views)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class CashierHeaderScheme(OpenApiAuthenticationExtension):
    target_class = "stores.till.api.authentication.CashierHeaderAuthentication"
    name = "cashierHeaders"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Cashier",
            "description": "The cashier's code in `X-Cashier` and PIN in `X-Cashier-Pin`, "
            "checked against the node's local copy of head office's PIN hash.",
        }


class CashierSessionScheme(OpenApiAuthenticationExtension):
    target_class = "stores.till.api.authentication.CashierSessionAuthentication"
    name = "cashierSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The cashier page's session after signing in with code and PIN "
            "(unsafe methods also need the X-CSRFToken header).",
        }
