"""Store-node authentication: ``Authorization: Bearer <node key>``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from stores.models import NodeKey
from stores.services import node_key_authenticate


class NodeKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    """The node is ``request.auth`` (its NodeKey); ``request.user`` stays anonymous, since a
    node is not a head-office user (history rows name no user for what nodes send)."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, NodeKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise AuthenticationFailed("The Authorization header is 'Bearer <node key>'.")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("The node key is not valid.") from exc
        node_key = node_key_authenticate(key=key)
        if node_key is None:
            raise AuthenticationFailed("The node key is not valid or has been revoked.")
        return AnonymousUser(), node_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="tillbook-sync"'


class IsNode(BasePermission):
    message = "Only a store node's key may use the sync API."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, NodeKey)


class NodeRateThrottle(SimpleRateThrottle):
    """Requests per node key (``API_THROTTLE_NODE``); counters live in the cache (Redis when
    ``REDIS_URL`` is set, so every web process shares them)."""

    scope = "node"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, NodeKey):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
