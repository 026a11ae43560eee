"""Head-office admin for the catalogue, and the base that every Tillbook admin builds on.

Nothing here saves or deletes a model itself. The add, change and delete views, the inlines
and the actions call the services (or ``erp.writes`` for inline rows that no service covers)
with the signed-in user as actor and ``reason="admin"``, so a write made in the admin is
validated and audited exactly like one made through the API.

When a service refuses a write, everything the request did is rolled back and the same POST
is validated again with the service's message attached to the form (or inline row) that
caused it, so the page re-renders with the error next to the field it names. Deletes and
actions report refusals as admin error messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, router, transaction
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms.formsets import DELETION_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from erp.errors import ApplicationError
from erp.writes import record_delete, record_save, record_update
from inventory import services
from inventory.models import Barcode, Currency, Price, PriceList, Product, StockLocation, TaxRate

REASON = "admin"

_FAILURE_ATTR = "_tillbook_admin_failure"
_KEPT_ATTR = "_tillbook_admin_kept"


# --- writing through services -------------------------------------------------------------------


@dataclass(frozen=True)
class Writes:
    """The service functions an admin or an inline writes its rows through.

    ``create(actor=, reason=, **fields)``, ``update(<instance>=, actor=, changes=, reason=)``
    and ``delete(<instance>=, actor=)``, where ``instance`` is the keyword the service takes
    the row as. ``delete`` returns False when it kept the row (a used product is deactivated).
    """

    create: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., Any]
    instance: str

    def do_create(self, request: HttpRequest, fields: dict[str, Any]) -> models.Model:
        return self.create(actor=request.user, reason=REASON, **fields)

    def do_update(
        self, request: HttpRequest, row: models.Model, changes: dict[str, Any]
    ) -> models.Model:
        return self.update(
            **{self.instance: row}, actor=request.user, changes=changes, reason=REASON
        )

    def do_delete(self, request: HttpRequest, row: models.Model) -> bool:
        """Delete ``row``; False if the service kept it instead."""
        return self.delete(**{self.instance: row}, actor=request.user) is not False


def record_writes(model: type[models.Model]) -> Writes:
    """Writes for rows that no service covers (a product's barcodes), audited the same way."""

    def create(*, actor: Any, reason: str | None = None, **fields: Any) -> models.Model:
        return record_save(instance=model(**fields), actor=actor, reason=reason)

    def delete(*, instance: models.Model, actor: Any) -> bool:
        record_delete(instance=instance, actor=actor, reason=REASON)
        return True

    return Writes(create=create, update=record_update, delete=delete, instance="instance")


@dataclass(frozen=True)
class _Failure:
    error: ApplicationError
    prefix: str | None  # the inline form whose write was refused; None for the main form


class _InlineWriteFailed(Exception):
    def __init__(self, error: ApplicationError, prefix: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.prefix = prefix


@contextmanager
def _blame(form: forms.BaseForm) -> Iterator[None]:
    """Tie a service refusal to the inline form whose row was being written."""
    try:
        yield
    except ApplicationError as exc:
        raise _InlineWriteFailed(exc, form.prefix or "") from exc


def add_application_error(form: forms.BaseForm, error: ApplicationError) -> None:
    """Put a service's refusal on ``form``: on the fields its details name, else on the form."""
    details = error.details if isinstance(error.details, dict) else {}
    unplaced: list[str] = []
    placed = False
    for name, found in details.items():
        texts = [str(m) for m in found] if isinstance(found, list | tuple) else [str(found)]
        if name in form.fields:
            form.add_error(name, texts)
            placed = True
        elif name == "non_field_errors":
            unplaced += texts
        else:
            unplaced += [f"{name}: {text}" for text in texts]
    if not placed:
        form.add_error(None, error.message)
    elif unplaced:
        form.add_error(None, unplaced)


def _form_with_failure(form_class: type[forms.ModelForm], error: ApplicationError) -> type:
    class RefusedForm(form_class):  # type: ignore[valid-type, misc]
        def clean(self) -> dict[str, Any]:
            cleaned = super().clean()
            add_application_error(self, error)
            return cleaned

    RefusedForm.__name__ = form_class.__name__
    return RefusedForm


def _formset_with_failure(formset_class: type, failure: _Failure) -> type:
    class RefusedFormSet(formset_class):  # type: ignore[valid-type, misc]
        def clean(self) -> None:
            super().clean()
            for form in self.forms:
                if form.prefix != failure.prefix:
                    continue
                if getattr(form, "cleaned_data", {}).get(DELETION_FIELD_NAME):
                    # A deleted row shows no errors of its own: say it for the whole table.
                    raise ValidationError(f"{form.instance}: {failure.error.message}")
                add_application_error(form, failure.error)

    RefusedFormSet.__name__ = formset_class.__name__
    return RefusedFormSet


def _adopt(target: models.Model, source: models.Model) -> None:
    """Make the admin's form instance the row the service saved (services build their own)."""
    if target is source:
        return
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


def _field_names(model: type[models.Model]) -> set[str]:
    return {f.name for f in model._meta.concrete_fields if f.editable and not f.primary_key}


def _child_count(model: type[models.Model], fk: str) -> Coalesce:
    """A correlated count, so several counts on one list page do not multiply each other."""
    counts = (
        model._default_manager.filter(**{fk: OuterRef("pk")})
        .order_by()
        .values(fk)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts), 0)


class ServiceInlineMixin:
    """An inline whose rows are written through ``writes`` by the parent's ``save_formset``."""

    writes: Writes | None = None

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)  # type: ignore[misc]
        failure: _Failure | None = getattr(request, _FAILURE_ATTR, None)
        if failure is not None and failure.prefix is not None:
            formset = _formset_with_failure(formset, failure)
        formset.admin_writes = self.writes
        return formset


class ServiceTabularInline(ServiceInlineMixin, admin.TabularInline):
    pass


class ReadOnlyTabularInline(admin.TabularInline):
    """Rows shown for context on the parent's page; never written from it."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ServiceAdmin(SimpleHistoryAdmin):
    """A model admin whose every write goes through ``writes``.

    ``immutable_fields`` (business keys) are read-only once the row exists. History can be
    viewed by whoever holds the historical model's view permission, but never reverted here:
    a revert would write around the services.
    """

    writes: Writes | None = None
    immutable_fields: tuple[str, ...] = ()
    actions: Sequence[Any] = ("delete_selected",)

    # -- forms ---------------------------------------------------------------------------------

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += tuple(name for name in self.immutable_fields if name not in fields)
        return fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        failure: _Failure | None = getattr(request, _FAILURE_ATTR, None)
        if failure is not None and failure.prefix is None:
            form = _form_with_failure(form, failure.error)
        return form

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (ApplicationError, _InlineWriteFailed) as exc:
            if isinstance(exc, _InlineWriteFailed):
                failure = _Failure(exc.error, exc.prefix)
            else:
                failure = _Failure(exc, None)
            if getattr(request, _FAILURE_ATTR, None) is not None:
                # The forms carried the first refusal and still got as far as a write.
                self.message_user(request, failure.error.message, messages.ERROR)
                return HttpResponseRedirect(request.get_full_path())
            # The refused write rolled back with everything before it. Validate the same POST
            # again with the refusal on the form that caused it, so the page re-renders.
            setattr(request, _FAILURE_ATTR, failure)
            return super().changeform_view(request, object_id, form_url, extra_context)

    # -- saving --------------------------------------------------------------------------------

    def _stored(self, obj: models.Model) -> models.Model:
        """The row as stored: services check changes against it (the form's copy is edited)."""
        return self.model._default_manager.get(pk=obj.pk)

    def save_model(
        self, request: HttpRequest, obj: models.Model, form: forms.ModelForm, change: bool
    ) -> None:
        if self.writes is None:
            raise PermissionDenied
        names = _field_names(self.model)
        if change:
            changes = {n: form.cleaned_data[n] for n in form.changed_data if n in names}
            if not changes:
                return
            saved = self.writes.do_update(request, self._stored(obj), changes)
        else:
            fields = {n: v for n, v in form.cleaned_data.items() if n in names}
            saved = self.writes.do_create(request, fields)
        _adopt(obj, saved)

    def save_formset(
        self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool
    ) -> None:
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        writes: Writes | None = getattr(formset, "admin_writes", None)
        if writes is None:
            return  # a read-only inline: its forms never report changes
        fk_name = formset.fk.name
        names = _field_names(formset.model) - {fk_name}
        deleted = formset.deleted_forms
        existing = [f for f in formset.initial_forms if f.instance.pk is not None]
        stored = formset.model._default_manager.in_bulk([f.instance.pk for f in existing])
        # Deletes, then edits, then additions: a validity range can be shortened and the next
        # one added in one save, and a barcode can move from a deleted row to a new one.
        for f in existing:
            row = stored.get(f.instance.pk)
            if f in deleted and row is not None:
                with _blame(f):
                    writes.do_delete(request, row)
                formset.deleted_objects.append(f.instance)
        for f in existing:
            row = stored.get(f.instance.pk)
            if f in deleted or row is None or not f.has_changed():
                continue
            changes = {n: f.cleaned_data[n] for n in f.changed_data if n in names}
            if changes:
                with _blame(f):
                    _adopt(f.instance, writes.do_update(request, row, changes))
                formset.changed_objects.append((f.instance, f.changed_data))
        for f in formset.extra_forms:
            if f in deleted or not f.has_changed():
                continue
            fields = {n: v for n, v in f.cleaned_data.items() if n in names}
            with _blame(f):
                _adopt(f.instance, writes.do_create(request, {fk_name: formset.instance, **fields}))
            formset.new_objects.append(f.instance)

    # -- deleting ------------------------------------------------------------------------------

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        # Logged by _delete_rows once the service has said whether it deleted or kept a row.
        return []

    def _delete_rows(self, request: HttpRequest, rows: list[models.Model]) -> tuple[int, int]:
        if self.writes is None:
            raise PermissionDenied
        deleted: list[models.Model] = []
        kept: list[models.Model] = []
        with transaction.atomic(using=router.db_for_write(self.model)):
            for row in rows:
                # The service deletes a fresh copy, so ``row`` keeps its pk for the log.
                if self.writes.do_delete(request, self._stored(row)):
                    deleted.append(row)
                else:
                    kept.append(row)
            if deleted:
                super().log_deletions(request, deleted)
            for row in kept:
                self.log_change(request, row, "Deactivated instead of deleted: in use.")
        setattr(request, _KEPT_ATTR, {row.pk for row in kept})
        return len(deleted), len(kept)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        self._delete_rows(request, [obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> tuple[int, int]:
        """Delete through the service, one row at a time; returns (deleted, kept)."""
        return self._delete_rows(request, list(queryset.order_by("pk")))

    def _change_url(self, object_id: Any) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=(object_id,)
        )

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(self._change_url(object_id))

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> HttpResponse:
        if obj_id in getattr(request, _KEPT_ATTR, ()):
            self.message_user(
                request,
                f"The {self.opts.verbose_name} “{obj_display}” is in use, so it was "
                "deactivated instead of deleted.",
                messages.WARNING,
            )
            return HttpResponseRedirect(self._change_url(obj_id))
        return super().response_delete(request, obj_display, obj_id)

    # -- actions -------------------------------------------------------------------------------

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            # The site-wide action reaches here too when a subclass lists its own actions.
            func = ServiceAdmin.delete_selected
            actions["delete_selected"] = (func, "delete_selected", func.short_description)
        return actions

    @admin.action(permissions=["delete"], description="Delete selected %(verbose_name_plural)s")
    def delete_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        # Django's own action shows the confirmation (or what blocks the delete); the
        # confirmed delete goes through the services so that refusals and kept rows are told.
        if not request.POST.get("post"):
            return admin_actions.delete_selected(self, request, queryset)
        _objects, _counts, perms_needed, protected = self.get_deleted_objects(queryset, request)
        if protected:
            return admin_actions.delete_selected(self, request, queryset)
        if perms_needed:
            raise PermissionDenied
        try:
            deleted, kept = self.delete_queryset(request, queryset)
        except ApplicationError as exc:
            self.message_user(request, f"Nothing was deleted: {exc.message}", messages.ERROR)
            return None
        if deleted:
            self.message_user(
                request,
                f"Deleted {deleted} {model_ngettext(self.opts, deleted)}.",
                messages.SUCCESS,
            )
        if kept:
            self.message_user(
                request,
                f"{kept} {model_ngettext(self.opts, kept)} in use, so deactivated instead of "
                "deleted.",
                messages.WARNING,
            )
        return None

    def _set_active(self, request: HttpRequest, queryset: QuerySet, active: bool) -> None:
        rows = [row for row in queryset.order_by("pk") if row.active != active]
        word = "Activated" if active else "Deactivated"
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                for row in rows:
                    self.writes.do_update(request, self._stored(row), {"active": active})  # type: ignore[union-attr]
                    self.log_change(request, row, f"{word}.")
        except ApplicationError as exc:
            self.message_user(request, f"Nothing was changed: {exc.message}", messages.ERROR)
            return
        self.message_user(
            request, f"{word} {len(rows)} {model_ngettext(self.opts, len(rows))}.", messages.SUCCESS
        )

    @admin.action(permissions=["change"], description="Activate selected %(verbose_name_plural)s")
    def activate_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, True)

    @admin.action(permissions=["change"], description="Deactivate selected %(verbose_name_plural)s")
    def deactivate_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, False)

    # -- history -------------------------------------------------------------------------------

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # django-simple-history saves a POST here for anyone who may *view* history; a revert
        # would also bypass the services. Historical versions are for reading.
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


# --- the catalogue ------------------------------------------------------------------------------


@admin.register(Currency)
class CurrencyAdmin(admin.ModelAdmin):
    """ISO 4217, loaded by a migration: read-only for everyone."""

    list_display = ("code", "name", "minor_units")
    search_fields = ("code", "name")
    ordering = ("code",)
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TaxRate)
class TaxRateAdmin(ServiceAdmin):
    writes = Writes(
        services.tax_rate_create,
        services.tax_rate_update,
        services.tax_rate_delete,
        instance="tax_rate",
    )
    immutable_fields = ("code",)
    list_display = ("code", "name", "rate", "inclusive", "active", "product_count")
    list_filter = ("active", "inclusive")
    search_fields = ("code", "name")
    ordering = ("code",)
    fields = ("code", "name", "rate", "inclusive", "active")
    actions = ("activate_selected", "deactivate_selected", "delete_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaxRate]:
        return (
            super().get_queryset(request).annotate(product_total=_child_count(Product, "tax_rate"))
        )

    @admin.display(description="products", ordering="product_total")
    def product_count(self, obj: TaxRate) -> int:
        return obj.product_total  # type: ignore[attr-defined]


class BarcodeInline(ServiceTabularInline):
    model = Barcode
    writes = record_writes(Barcode)
    fields = ("code", "symbology", "created_at")
    readonly_fields = ("symbology", "created_at")
    extra = 1

    @admin.display(description="symbology")
    def symbology(self, obj: Barcode) -> str:
        try:
            return obj.symbology
        except ValueError:
            return "-"


PRICE_WRITES = Writes(
    services.price_create, services.price_update, services.price_delete, instance="price"
)


class ProductPriceInline(ServiceTabularInline):
    model = Price
    writes = PRICE_WRITES
    fields = ("price_list", "price", "valid_from", "valid_to")
    autocomplete_fields = ("price_list",)
    ordering = ("price_list__code", "valid_from")
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Price]:
        return super().get_queryset(request).select_related("price_list__currency")


@admin.register(Product)
class ProductAdmin(ServiceAdmin):
    writes = Writes(
        services.product_create,
        services.product_update,
        services.product_delete,
        instance="product",
    )
    immutable_fields = ("sku",)
    list_display = (
        "sku",
        "name",
        "unit",
        "weighed",
        "tax_rate",
        "cost",
        "active",
        "barcode_codes",
    )
    list_display_links = ("sku", "name")
    list_filter = ("active", "unit", "weighed", "tax_rate")
    list_select_related = ("tax_rate",)
    search_fields = ("sku", "name", "barcodes__code")
    search_help_text = "SKU, name or barcode."
    autocomplete_fields = ("tax_rate",)
    ordering = ("sku",)
    fields = (
        "sku",
        "name",
        "unit",
        "weighed",
        "tax_rate",
        "cost",
        "active",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("created_at", "updated_at")
    inlines = (BarcodeInline, ProductPriceInline)
    actions = ("activate_selected", "deactivate_selected", "delete_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("barcodes", queryset=Barcode.objects.order_by("code")))
        )

    @admin.display(description="barcodes")
    def barcode_codes(self, obj: Product) -> str:
        return ", ".join(b.code for b in obj.barcodes.all())

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, Any]:
        # A used product is not refused: the service deactivates it. Say so up front instead
        # of the "cannot delete" page.
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected and not request.POST.get("post"):
            self.message_user(
                request,
                "Some of these products are in use (stock moves or sales refer to them); they "
                "will be deactivated instead of deleted.",
                messages.WARNING,
            )
        return to_delete, model_count, perms_needed, []


@admin.register(Barcode)
class BarcodeAdmin(ServiceAdmin):
    writes = record_writes(Barcode)
    list_display = ("code", "symbology", "product", "created_at")
    list_select_related = ("product",)
    search_fields = ("code", "product__sku", "product__name")
    autocomplete_fields = ("product",)
    ordering = ("code",)
    fields = ("code", "product", "created_at")
    readonly_fields = ("created_at",)

    @admin.display(description="symbology")
    def symbology(self, obj: Barcode) -> str:
        try:
            return obj.symbology
        except ValueError:
            return "-"


@admin.register(PriceList)
class PriceListAdmin(ServiceAdmin):
    """Price lists; their prices (thousands per list) are on the price pages, one link away."""

    writes = Writes(
        services.price_list_create,
        services.price_list_update,
        services.price_list_delete,
        instance="price_list",
    )
    immutable_fields = ("code",)
    list_display = ("code", "name", "currency", "active", "prices_link")
    list_filter = ("active", ("currency", admin.RelatedOnlyFieldListFilter))
    search_fields = ("code", "name")
    autocomplete_fields = ("currency",)
    ordering = ("code",)
    fields = ("code", "name", "currency", "active", "prices_link")
    readonly_fields = ("prices_link",)
    actions = ("activate_selected", "deactivate_selected", "delete_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet[PriceList]:
        return super().get_queryset(request).annotate(price_total=_child_count(Price, "price_list"))

    @admin.display(description="prices", ordering="price_total")
    def prices_link(self, obj: PriceList) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:inventory_price_changelist")
        total = getattr(obj, "price_total", None)
        if total is None:
            total = obj.prices.count()
        return format_html(
            '<a href="{}?price_list__id__exact={}">{} prices</a>', url, obj.pk, total
        )


@admin.register(Price)
class PriceAdmin(ServiceAdmin):
    writes = PRICE_WRITES
    immutable_fields = ("price_list", "product")
    list_display = ("product", "price_list", "amount", "valid_from", "valid_to")
    list_filter = ("price_list", ("valid_to", admin.EmptyFieldListFilter))
    list_select_related = ("product", "price_list__currency")
    search_fields = ("product__sku", "product__name")
    search_help_text = "SKU or product name."
    autocomplete_fields = ("price_list", "product")
    ordering = ("price_list__code", "product__sku", "valid_from")
    fields = (
        "price_list",
        "product",
        "price",
        "valid_from",
        "valid_to",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="price", ordering="price")
    def amount(self, obj: Price) -> str:
        currency = obj.price_list.currency
        return f"{obj.price.quantize(currency.quantum())} {currency.code}"


@admin.register(StockLocation)
class StockLocationAdmin(ServiceAdmin):
    writes = Writes(
        services.stock_location_create,
        services.stock_location_update,
        services.stock_location_delete,
        instance="location",
    )
    immutable_fields = ("code",)
    list_display = ("code", "name", "kind", "active")
    list_filter = ("kind", "active")
    search_fields = ("code", "name")
    ordering = ("code",)
    fields = ("code", "name", "kind", "active")
    actions = ("activate_selected", "deactivate_selected", "delete_selected")
