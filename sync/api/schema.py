"""OpenAPI description of the node-key authentication (loaded by the sync app)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class NodeKeyScheme(OpenApiAuthenticationExtension):
    target_class = "sync.api.auth.NodeKeyAuthentication"
    name = "nodeKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A store node's key: `Authorization: Bearer tbk_<prefix>_<secret>`.",
        }
