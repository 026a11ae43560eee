"""Head-office admin for stores, registers, node keys and cashiers.

Writes go through ``stores.services`` (see ``inventory.admin`` for how the admin does that).
A node key is issued from a store (an action on the list, or the button on its page) and its
plain text is rendered once, in the response to that request: it is never put in a message,
a session or a redirect, and only its SHA-256 digest is stored. The digest itself is never
displayed either.

A cashier's PIN is typed into a password field that is never filled in again, and goes
straight to the services, which keep only its hash; the hash is never displayed (nor in
history, which excludes it).
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Sequence
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.admin.utils import model_ngettext, unquote
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.cache import patch_cache_control
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from erp.errors import ApplicationError, ValidationFailed
from inventory.admin import (
    REASON,
    ReadOnlyTabularInline,
    ServiceAdmin,
    ServiceTabularInline,
    Writes,
    _adopt,
)
from stores import services
from stores.models import (
    SUPERVISOR_OPERATIONS,
    Cashier,
    CashierStore,
    NodeKey,
    Register,
    Store,
    default_supervisor_operations,
)

NODE_KEY_FIELDS = (
    "prefix",
    "label",
    "is_active",
    "created_at",
    "created_by",
    "last_used_at",
    "revoked_at",
    "revoked_by",
)


@functools.cache
def _timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


OFFLINE_RULE_FIELDS = ("offline_card_limit", "offline_warn_hours", "supervisor_operations")


class StoreForm(forms.ModelForm):
    timezone = forms.ChoiceField(
        choices=_timezone_choices,
        initial=settings.TIME_ZONE,
        help_text="The store's IANA time zone: it decides which business date a sale belongs to.",
    )
    supervisor_operations = forms.MultipleChoiceField(
        choices=[(name, name.replace("_", " ")) for name in SUPERVISOR_OPERATIONS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=default_supervisor_operations,
        help_text="Till operations that need a supervisor's code and PIN.",
    )

    class Meta:
        model = Store
        fields = (
            "code",
            "name",
            "timezone",
            "currency",
            "price_list",
            "stock_location",
            "active",
            *OFFLINE_RULE_FIELDS,
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        location = self.fields.get("stock_location")
        if location is not None and self.instance._state.adding:
            # store_create makes the store's own sales-floor location when none is chosen.
            location.required = False
            location.help_text = (
                "Leave empty to create the store's own sales-floor location, with the store's code."
            )

    def clean_supervisor_operations(self) -> list[str]:
        chosen = set(self.cleaned_data.get("supervisor_operations") or ())
        return [name for name in SUPERVISOR_OPERATIONS if name in chosen]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        limit = cleaned.get("offline_card_limit")
        currency = cleaned.get("currency") or getattr(self.instance, "currency", None)
        if limit is not None and currency is not None:
            errors = services.store_offline_card_limit_errors(limit, currency)
            if errors:
                self.add_error("offline_card_limit", errors)
        return cleaned


class RegisterInline(ServiceTabularInline):
    model = Register
    writes = Writes(
        services.register_create,
        services.register_update,
        services.register_delete,
        instance="register",
    )
    fields = ("code", "name", "active", "created_at")
    readonly_fields = ("created_at",)
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Register]:
        return super().get_queryset(request).select_related("store")


class NodeKeyInline(ReadOnlyTabularInline):
    model = NodeKey
    fields = NODE_KEY_FIELDS
    readonly_fields = NODE_KEY_FIELDS
    verbose_name_plural = "node keys"

    def get_queryset(self, request: HttpRequest) -> QuerySet[NodeKey]:
        return super().get_queryset(request).select_related("store", "created_by", "revoked_by")

    @admin.display(boolean=True, description="active")
    def is_active(self, obj: NodeKey) -> bool:
        return obj.is_active


class NodeKeyIssueForm(forms.Form):
    label = forms.CharField(
        max_length=NodeKey._meta.get_field("label").max_length,
        required=False,
        help_text="Where the key will be used, for example “back-office PC”.",
    )


@admin.register(Store)
class StoreAdmin(ServiceAdmin):
    form = StoreForm
    writes = Writes(
        services.store_create, services.store_update, services.store_delete, instance="store"
    )
    immutable_fields = ("code",)
    list_display = (
        "code",
        "name",
        "timezone",
        "currency",
        "price_list",
        "stock_location",
        "register_count",
        "active_key_count",
        "active",
    )
    list_display_links = ("code", "name")
    list_filter = (
        "active",
        ("currency", admin.RelatedOnlyFieldListFilter),
        ("price_list", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("currency", "price_list", "stock_location")
    search_fields = ("code", "name")
    autocomplete_fields = ("currency", "price_list", "stock_location")
    ordering = ("code",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "code",
                    "name",
                    "timezone",
                    "currency",
                    "price_list",
                    "stock_location",
                    "active",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (
            "Offline rules",
            {
                "fields": OFFLINE_RULE_FIELDS,
                "description": "What the store's tills may do while head office is unreachable.",
            },
        ),
    )
    readonly_fields = ("created_at", "updated_at")
    actions = ("issue_node_key", "activate_selected", "deactivate_selected", "delete_selected")

    def get_inlines(self, request: HttpRequest, obj: Store | None) -> Any:
        return (RegisterInline,) if obj is None else (RegisterInline, NodeKeyInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Store]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                register_total=Count("registers", distinct=True),
                active_key_total=Count(
                    "node_keys", filter=Q(node_keys__revoked_at__isnull=True), distinct=True
                ),
            )
        )

    @admin.display(description="registers", ordering="register_total")
    def register_count(self, obj: Store) -> int:
        return obj.register_total  # type: ignore[attr-defined]

    @admin.display(description="active keys", ordering="active_key_total")
    def active_key_count(self, obj: Store) -> int:
        return obj.active_key_total  # type: ignore[attr-defined]

    # -- node keys -----------------------------------------------------------------------------

    def has_issue_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("stores.add_nodekey")

    def get_urls(self) -> list[Any]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_issue_node_key"
        return [
            path(
                "<path:object_id>/issue-node-key/",
                self.admin_site.admin_view(self.issue_node_key_view),
                name=name,
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {
            "can_issue_node_key": self.has_issue_permission(request),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    @admin.action(permissions=["issue"], description="Issue a node key")
    def issue_node_key(
        self, request: HttpRequest, queryset: QuerySet[Store]
    ) -> HttpResponse | None:
        return self._issue_node_keys(request, list(queryset.order_by("code")), via_action=True)

    def issue_node_key_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_issue_permission(request):
            raise PermissionDenied
        store = self.get_object(request, unquote(object_id))
        if store is None:
            raise Http404
        response = self._issue_node_keys(request, [store], via_action=False)
        return response or HttpResponseRedirect(self._change_url(store.pk))

    def _issue_node_keys(
        self, request: HttpRequest, stores: list[Store], *, via_action: bool
    ) -> HttpResponse | None:
        """Ask for a label; once confirmed, issue one key per store and show them, once."""
        confirmed = request.method == "POST" and request.POST.get("post") == "yes"
        form = NodeKeyIssueForm(request.POST if confirmed else None)
        if confirmed and form.is_valid():
            try:
                with transaction.atomic(using=router.db_for_write(NodeKey)):
                    issued = [
                        (
                            store,
                            *services.node_key_issue(
                                actor=request.user, store=store, label=form.cleaned_data["label"]
                            ),
                        )
                        for store in stores
                    ]
                    LogEntry.objects.log_actions(
                        user_id=request.user.pk,
                        queryset=[node_key for _store, node_key, _plain in issued],
                        action_flag=ADDITION,
                        change_message="Issued from the admin.",
                    )
            except ApplicationError as exc:
                self.message_user(request, f"No key was issued: {exc.message}", messages.ERROR)
                return None
            return self._render_issued(request, issued)
        context = {
            **self.admin_site.each_context(request),
            "title": "Issue a node key",
            "opts": self.opts,
            "stores": stores,
            "form": form,
            "via_action": via_action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "inactive": [store for store in stores if not store.active],
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/stores/nodekey_issue.html", context)

    def _render_issued(
        self, request: HttpRequest, issued: list[tuple[Store, NodeKey, str]]
    ) -> HttpResponse:
        # Rendered into this response only: a message or a redirect would park the key in the
        # session or a cookie until the next page.
        context = {
            **self.admin_site.each_context(request),
            "title": "Node key issued" if len(issued) == 1 else "Node keys issued",
            "opts": self.opts,
            "nodekey_opts": NodeKey._meta,
            "issued": [
                {"store": store, "node_key": node_key, "key": plain}
                for store, node_key, plain in issued
            ],
        }
        request.current_app = self.admin_site.name
        response = TemplateResponse(request, "admin/stores/nodekey_issued.html", context)
        patch_cache_control(
            response, no_cache=True, no_store=True, must_revalidate=True, private=True, max_age=0
        )
        return response


@admin.register(Register)
class RegisterAdmin(ServiceAdmin):
    writes = RegisterInline.writes
    # A register's events are numbered per (store, code): both are fixed once it exists.
    immutable_fields = ("store", "code")
    list_display = ("__str__", "store", "code", "name", "active", "created_at")
    list_filter = ("active", ("store", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("store",)
    search_fields = ("code", "name", "store__code", "store__name")
    autocomplete_fields = ("store",)
    ordering = ("store__code", "code")
    fields = ("store", "code", "name", "active", "created_at")
    readonly_fields = ("created_at",)
    actions = ("activate_selected", "deactivate_selected", "delete_selected")


class NodeKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "active"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[NodeKey]) -> QuerySet[NodeKey]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(NodeKey)
class NodeKeyAdmin(ServiceAdmin):
    """Keys are issued from their store and revoked here; never edited, never deleted.

    Deleting a key would drop the record of who issued and revoked it; revoking keeps it.
    """

    list_display = (
        "prefix",
        "store",
        "label",
        "is_active",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (NodeKeyStatusFilter, ("store", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("store", "created_by")
    search_fields = ("prefix", "label", "store__code", "store__name")
    ordering = ("store__code", "-created_at")
    # No digest: a field that is not listed is neither shown nor editable.
    fields = ("store", *NODE_KEY_FIELDS)
    readonly_fields = ("store", *NODE_KEY_FIELDS)
    actions = ("revoke_selected",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("stores.delete_nodekey")

    @admin.display(boolean=True, description="active", ordering="revoked_at")
    def is_active(self, obj: NodeKey) -> bool:
        return obj.is_active

    @admin.action(permissions=["revoke"], description="Revoke selected keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[NodeKey]) -> None:
        keys = [k for k in queryset.select_related("store").order_by("pk") if k.is_active]
        try:
            with transaction.atomic(using=router.db_for_write(NodeKey)):
                for key in keys:
                    services.node_key_revoke(node_key=key, actor=request.user)
                    self.log_change(request, key, "Revoked.")
        except ApplicationError as exc:
            self.message_user(request, f"No key was revoked: {exc.message}", messages.ERROR)
            return
        self.message_user(
            request,
            f"Revoked {len(keys)} {model_ngettext(self.opts, len(keys))}; store nodes using "
            "them are refused from now on.",
            messages.SUCCESS,
        )

    def set_history_delta_changes(
        self, request: HttpRequest, historical_records: Any, foreign_keys_are_objs: bool = True
    ) -> None:
        # As super(), but the digest never appears among the changes.
        previous = None
        for current in historical_records:
            if previous is not None:
                delta = previous.diff_against(
                    current,
                    excluded_fields=["digest"],
                    foreign_keys_are_objs=foreign_keys_are_objs,
                )
                helper = self.get_historical_record_context_helper(request, previous)
                previous.history_delta_changes = helper.context_for_delta_changes(delta)
            previous = current


# --- cashiers -----------------------------------------------------------------------------------


class CashierStoresField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Store) -> str:
        return f"{obj.code} {obj.name}" + ("" if obj.active else " (inactive)")


class CashierForm(forms.ModelForm):
    pin = forms.CharField(
        label="PIN",
        required=False,
        strip=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "inputmode": "numeric"}
        ),
        help_text="4 to 8 digits.",
    )
    # Not named "stores": the admin writes the memberships through the services, not the M2M.
    in_stores = CashierStoresField(
        label="Stores",
        queryset=Store.objects.none(),
        required=False,
        widget=FilteredSelectMultiple("stores", is_stacked=False),
        help_text="The stores whose tills the cashier may sign in at. Only active stores can be "
        "added.",
    )

    class Meta:
        model = Cashier
        fields = ("code", "name", "role", "active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adding = self.instance._state.adding
        pin = self.fields["pin"]
        pin.required = adding
        if not adding:
            pin.label = "New PIN"
            pin.help_text = "4 to 8 digits. Leave empty to keep the current PIN."
        current = (
            [] if adding else list(self.instance.memberships.values_list("store_id", flat=True))
        )
        # Active stores to choose from, and the inactive ones the cashier already works in.
        self.fields["in_stores"].queryset = Store.objects.filter(
            Q(active=True) | Q(pk__in=current)
        ).order_by("code")
        if not adding:
            self.fields["in_stores"].initial = current

    def clean_pin(self) -> str:
        pin = self.cleaned_data.get("pin") or ""
        if pin:
            errors = services.cashier_pin_errors(pin)
            if errors:
                raise forms.ValidationError(errors, code="invalid_pin")
        return pin


CASHIER_WRITES = Writes(
    services.cashier_create,
    services.cashier_update,
    services.cashier_delete,
    instance="cashier",
)


@admin.register(Cashier)
class CashierAdmin(ServiceAdmin):
    form = CashierForm
    writes = CASHIER_WRITES
    immutable_fields = ("code",)
    list_display = ("code", "name", "role", "active", "store_codes")
    list_display_links = ("code", "name")
    list_filter = ("active", "role", ("stores", admin.RelatedOnlyFieldListFilter))
    search_fields = ("code", "name")
    search_help_text = "Code or name."
    ordering = ("code",)
    fields = ("code", "name", "role", "active", "pin", "in_stores", "created_at", "updated_at")
    readonly_fields = ("created_at", "updated_at")
    actions = ("activate_selected", "deactivate_selected", "delete_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cashier]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch("stores", queryset=Store.objects.only("pk", "code").order_by("code"))
            )
        )

    @admin.display(description="stores")
    def store_codes(self, obj: Cashier) -> str:
        return ", ".join(store.code for store in obj.stores.all())

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        if obj is not None and not self.has_change_permission(request, obj):
            # A read-only page: no PIN field, and the stores as text.
            return ("code", "name", "role", "active", "store_codes", "created_at", "updated_at")
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            fields += ("store_codes",)
        return fields

    @method_decorator(sensitive_post_parameters("pin"))
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(
        self, request: HttpRequest, obj: Cashier, form: forms.ModelForm, change: bool
    ) -> None:
        pin = form.cleaned_data.get("pin") or None
        try:
            saved = self._save_cashier(request, obj, form, change, pin)
        except ValidationFailed as exc:
            # The form's field is "in_stores": put the services' "stores" message next to it.
            if isinstance(exc.details, dict) and "stores" in exc.details:
                exc.details = {
                    ("in_stores" if k == "stores" else k): v for k, v in exc.details.items()
                }
            raise
        if saved is not None:
            _adopt(obj, saved)

    def _save_cashier(
        self,
        request: HttpRequest,
        obj: Cashier,
        form: forms.ModelForm,
        change: bool,
        pin: str | None,
    ) -> Cashier | None:
        data = form.cleaned_data
        names = ("code", "name", "role", "active")
        if change:
            stores = list(data["in_stores"]) if "in_stores" in form.changed_data else None
            changes = {n: data[n] for n in form.changed_data if n in names}
            if not changes and pin is None and stores is None:
                return None
            return services.cashier_update(
                cashier=self._stored(obj),
                actor=request.user,
                changes=changes,
                pin=pin,
                stores=stores,
                reason=REASON,
            )
        return services.cashier_create(
            actor=request.user,
            pin=pin or "",
            stores=list(data.get("in_stores") or ()),
            reason=REASON,
            **{n: data[n] for n in names if n in data},
        )

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, Any]:
        # A cashier that sales name is not deleted but deactivated: say so up front.
        result = super().get_deleted_objects(objs, request)
        if not request.POST.get("post") and any(services.cashier_is_used(c) for c in objs):
            self.message_user(
                request,
                "Some of these cashiers appear on sales or till sessions; they will be "
                "deactivated instead of deleted.",
                messages.WARNING,
            )
        return result


def _membership_delete(*, membership: CashierStore, actor: Any) -> bool:
    return services.cashier_store_remove(
        cashier=membership.cashier, store=membership.store, actor=actor, reason=REASON
    )


def _membership_update(*, membership: CashierStore, **kwargs: Any) -> CashierStore:
    raise ValidationFailed("A membership is not changed: remove it and add another.")


@admin.register(CashierStore)
class CashierStoreAdmin(ServiceAdmin):
    """Who works where, with its history. Memberships are chosen on the cashier's page; one
    can also be added or removed here (through the same services)."""

    writes = Writes(
        services.cashier_store_add, _membership_update, _membership_delete, instance="membership"
    )
    list_display = ("cashier", "store")
    list_filter = (("store", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("cashier", "store")
    search_fields = ("cashier__code", "cashier__name", "store__code")
    autocomplete_fields = ("cashier", "store")
    ordering = ("cashier__code", "store__code")
    fields = ("cashier", "store")
    immutable_fields = ("cashier", "store")
    actions = ("delete_selected",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
