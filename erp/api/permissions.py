"""Role enforcement for the HQ API, from the same model permissions the admin uses.

Roles are groups (``staff``, ``finance``, ``auditor``; see ``erp.roles``) holding Django model
permissions, so the admin and the API agree by construction: reading needs ``view_<model>``,
creating ``add_``, changing ``change_`` and removing ``delete_``. A view may name other
permissions per action with ``required_permissions = {"action": ["app.codename", ...]}``.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

_METHOD_ACTIONS = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


class RolePermission(BasePermission):
    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated or not user.is_active:
            return False
        required = self.required(request, view)
        return user.has_perms(required)

    @staticmethod
    def required(request: Request, view: Any) -> list[str]:
        explicit = getattr(view, "required_permissions", None) or {}
        action = getattr(view, "action", None)
        if action in explicit:
            return list(explicit[action])
        verb = _METHOD_ACTIONS.get(request.method or "", "change")
        model = view.permission_model() if hasattr(view, "permission_model") else None
        if model is None:
            queryset = view.get_queryset() if hasattr(view, "get_queryset") else None
            model = getattr(queryset, "model", None)
        if model is None:
            return ["__no_permission__.denied"]
        return [f"{model._meta.app_label}.{verb}_{model._meta.model_name}"]
