"""Head-office admin for what store nodes send: events, conflicts, batches, dead letters and
reconciliation exceptions, plus the sync monitor.

Everything received is read-only here: nobody adds, edits or deletes an event. The only
writes are the people's decisions, each through its service with the signed-in user as actor
(see ``inventory.admin`` for the conventions): a dead letter is re-applied as received,
corrected and re-applied, or voided with a reason (``sync.dead_letters``); an exception is
acknowledged or resolved with a note (``sync.exception_services``). Those need the model's
``change`` permission; the other pages need ``view``. Event tables are large, so list pages
never count the whole table, never list distinct values of a column, and never load bodies.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext, unquote
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from erp.errors import ApplicationError
from inventory.admin import ServiceAdmin, add_application_error
from stores.models import Register, Store
from sync.dead_letters import dead_letter_reapply, dead_letter_void
from sync.exception_services import exception_acknowledge, exception_resolve
from sync.models import Batch, DeadLetter, Event, EventConflict, ReconciliationException
from sync.push.schema import DATA_TYPES
from sync.selectors import node_sync_overview, store_sync_overview

# --- shared pieces ------------------------------------------------------------------------------


def _pretty(text: str) -> SafeString:
    """JSON indented for reading (as it is, if it does not parse), in a ``<pre>``."""
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return format_html('<pre class="sync-json" style="white-space: pre-wrap">{}</pre>', text)


def _decoded(raw: Any) -> str:
    return bytes(raw or b"").decode("utf-8", errors="replace")


def _url(name: str, *args: Any, **query: Any) -> str:
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


def _choices_filter(field: str, title: str, choices: Sequence[str]) -> type:
    """A filter with fixed choices: listing a big table's distinct values scans all of it."""

    class ChoicesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [(value, value.replace("_", " ")) for value in choices]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            return queryset.filter(**{field: value}) if value else queryset

    ChoicesFilter.title = title
    ChoicesFilter.__name__ = f"{field.title().replace('_', '')}Filter"
    return ChoicesFilter


class RegisterFilter(admin.SimpleListFilter):
    """Registers as ``STORE/CODE``, loaded with their stores in one query."""

    title = "register"
    parameter_name = "register"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        registers = Register.objects.select_related("store").order_by("store__code", "code")
        return [(str(r.pk), f"{r.store.code}/{r.code}") for r in registers]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(register_id=int(value))
        return queryset


def _uuid_search(queryset: QuerySet, term: str, fields: Sequence[str]) -> tuple[QuerySet, bool]:
    """Exact search on UUID columns (by index); anything that is not a UUID finds nothing."""
    term = term.strip()
    if not term:
        return queryset, False
    try:
        value = uuid.UUID(term)
    except ValueError:
        return queryset.none(), False
    return queryset.filter(Q.create([(name, value) for name in fields], connector=Q.OR)), False


class LeanListMixin:
    """List pages leave the bulky column out (``changelist_defer``); the search box looks up
    UUID columns exactly (``uuid_search_fields``), by index."""

    changelist_defer: tuple[str, ...] = ()
    uuid_search_fields: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        on_list = request.resolver_match and request.resolver_match.url_name.endswith("_changelist")
        return (
            queryset.defer(*self.changelist_defer)
            if on_list and self.changelist_defer
            else queryset
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if not self.uuid_search_fields:
            return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        return _uuid_search(queryset, search_term, self.uuid_search_fields)


class ReceivedAdmin(LeanListMixin, admin.ModelAdmin):
    """What arrived from the stores, as it arrived: viewable, never added, changed or deleted."""

    actions = None
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DecisionAdmin(LeanListMixin, ServiceAdmin):
    """Rows people decide about through actions; the rows themselves are never edited here.

    The decisions need the model's ``change`` permission (``has_decide_permission``); the
    change page itself stays read-only for everyone.
    """

    writes = None
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_decide_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {"can_decide": self.has_decide_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def _object_or_404(self, request: HttpRequest, object_id: str) -> Any:
        if not self.has_decide_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        return obj

    def _render(self, request: HttpRequest, template: str, context: dict[str, Any]) -> Any:
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            template,
            {**self.admin_site.each_context(request), "opts": self.opts, **context},
        )

    def _decide_each(
        self,
        request: HttpRequest,
        rows: list[Any],
        decide: Callable[[Any], str],
        *,
        done: str,
        refused: str,
    ) -> bool:
        """Apply ``decide`` to every row in one transaction: all of them, or none."""
        current = None
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                for row in rows:
                    current = row
                    self.log_change(request, row, decide(row))
        except ApplicationError as exc:
            self.message_user(request, f"{refused}: {current}: {exc.message}", messages.ERROR)
            return False
        self.message_user(
            request, f"{done} {len(rows)} {model_ngettext(self.opts, len(rows))}.", messages.SUCCESS
        )
        return True


class TextForm(forms.Form):
    """The one required text a decision needs: a reason, a note."""

    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80}))


# --- events -------------------------------------------------------------------------------------


@admin.register(Event)
class EventAdmin(ReceivedAdmin):
    changelist_defer = ("payload",)
    uuid_search_fields = ("event_id",)
    list_display = (
        "event_id",
        "store",
        "register",
        "seq",
        "type",
        "status",
        "hold_reason",
        "business_date",
        "received_at",
    )
    list_filter = (
        "status",
        _choices_filter("type", "type", list(DATA_TYPES)),
        _choices_filter("hold_reason", "hold reason", ["unknown_sku", "original_not_received"]),
        "store",
        RegisterFilter,
        "business_date",
    )
    list_select_related = ("store", "register__store")
    search_fields = ("event_id",)
    search_help_text = "Event id (exact)."
    ordering = ("-id",)
    fields = (
        "event_id",
        "store",
        "register",
        "seq",
        "type",
        "status",
        "hold_reason",
        "waiting_for",
        "occurred_at",
        "business_date",
        "received_at",
        "applied_at",
        "batch",
        "content_hash",
        "canonical_payload",
    )
    readonly_fields = fields

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # A batch's page links to its events.
        return lookup == "batch_id" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="batch")
    def batch(self, obj: Event) -> str:
        return format_html(
            '<a href="{}">{}</a>', _url("sync_batch_change", obj.batch_id), obj.batch_id
        )

    @admin.display(description="payload (canonical JSON)")
    def canonical_payload(self, obj: Event) -> SafeString:
        return _pretty(obj.payload)

    # -- the sync monitor ----------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        return [
            path("monitor/", self.admin_site.admin_view(self.monitor_view), name="sync_monitor"),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"monitor_url": reverse("admin:sync_monitor"), **(extra_context or {})}
        return super().changelist_view(request, context)

    def monitor_view(self, request: HttpRequest) -> HttpResponse:
        """Per store and register: how far HQ has received, what waits for a person."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        stores = Store.objects.order_by("code")
        chosen = request.GET.get("store")
        if chosen:
            stores = stores.filter(code=chosen)
        overview = []
        for store in stores:
            registers = store_sync_overview(store=store)
            for row in registers:
                row.update(self._register_links(store, row))
            overview.append(
                {
                    "store": store,
                    "registers": registers,
                    "nodes": node_sync_overview(store=store),
                    "last_push_at": max(
                        (r["last_push_at"] for r in registers if r["last_push_at"]), default=None
                    ),
                    "open_exceptions_url": _url(
                        "sync_reconciliationexception_changelist",
                        store__id__exact=store.pk,
                        status__exact="open",
                    ),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Sync monitor",
            "opts": self.opts,
            "overview": overview,
            "max_clock_skew": settings.SYNC_MAX_CLOCK_SKEW,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/sync/monitor.html", context)

    @staticmethod
    def _register_links(store: Store, row: dict[str, Any]) -> dict[str, Any]:
        register = row["register"]
        where = {"store__id__exact": store.pk, "register": register.pk}
        return {
            "gaps_text": ", ".join(
                str(start) if start == end else f"{start}–{end}" for start, end in row["gaps"]
            ),
            "events_url": _url("sync_event_changelist", **where),
            "held_url": _url("sync_event_changelist", **where, status__exact="held"),
            "conflicts_url": _url(
                "sync_eventconflict_changelist", **where, resolved_at__isempty="1"
            ),
            "rejected_url": _url(
                "sync_deadletter_changelist",
                store__id__exact=store.pk,
                register_code__exact=register.code,
                status__exact="open",
            ),
            "gap_exceptions_url": _url(
                "sync_reconciliationexception_changelist",
                store__id__exact=store.pk,
                type__exact="seq_gap",
                status__exact="open",
            ),
        }


@admin.register(EventConflict)
class EventConflictAdmin(ReceivedAdmin):
    uuid_search_fields = ("event_id", "existing_event_id")
    list_display = (
        "received_at",
        "reason",
        "store",
        "register",
        "seq",
        "event_id",
        "existing_event_id",
        "is_resolved",
    )
    list_filter = ("reason", ("resolved_at", admin.EmptyFieldListFilter), "store", RegisterFilter)
    list_select_related = ("store", "register__store")
    search_fields = ("event_id",)
    search_help_text = "Event id or existing event id (exact)."
    ordering = ("-received_at", "-id")
    fields = (
        "reason",
        "event_id",
        "existing_event_id",
        "store",
        "register",
        "seq",
        "batch",
        "content_hash",
        "received_at",
        "resolved_at",
        "resolved_by",
        "resolution_note",
        "payloads",
    )
    readonly_fields = fields

    @admin.display(boolean=True, description="resolved", ordering="resolved_at")
    def is_resolved(self, obj: EventConflict) -> bool:
        return obj.resolved_at is not None

    @admin.display(description="batch")
    def batch(self, obj: EventConflict) -> str:
        return format_html(
            '<a href="{}">{}</a>', _url("sync_batch_change", obj.batch_id), obj.batch_id
        )

    @admin.display(description="payloads")
    def payloads(self, obj: EventConflict) -> SafeString:
        existing = Event.objects.filter(event_id=obj.existing_event_id).first()
        if existing is None:
            theirs = format_html("<p>{}</p>", "The existing event is not stored.")
            heading = format_html("Existing event {}", obj.existing_event_id)
        else:
            theirs = _pretty(existing.payload)
            heading = format_html(
                'Existing event <a href="{}">{} #{}</a>',
                _url("sync_event_change", existing.pk),
                existing.register.code,
                existing.seq,
            )
        return format_html(
            '<table class="sync-conflict"><thead><tr><th>{}</th><th>{}</th></tr></thead>'
            '<tbody><tr><td style="vertical-align: top">{}</td>'
            '<td style="vertical-align: top">{}</td></tr></tbody></table>',
            f"This event ({obj.get_reason_display()})",
            heading,
            _pretty(obj.payload),
            theirs,
        )


@admin.register(Batch)
class BatchAdmin(ReceivedAdmin):
    changelist_defer = ("response",)
    uuid_search_fields = ("batch_id",)
    list_display = ("batch_id", "store", "node_key", "event_count", "node_time", "received_at")
    list_filter = ("store", "received_at")
    list_select_related = ("store", "node_key__store")
    search_fields = ("batch_id",)
    search_help_text = "Batch id (exact)."
    ordering = ("-received_at",)
    fields = (
        "batch_id",
        "store",
        "node_key",
        "event_count",
        "events",
        "node_time",
        "received_at",
        "content_hash",
        "response_body",
    )
    readonly_fields = fields

    @admin.display(description="events received")
    def events(self, obj: Batch) -> str:
        return format_html(
            '<a href="{}">{}</a>', _url("sync_event_changelist", batch_id=obj.batch_id), "events"
        )

    @admin.display(description="response (as answered, replayed for retries)")
    def response_body(self, obj: Batch) -> SafeString:
        return _pretty(_decoded(obj.response))


# --- dead letters -------------------------------------------------------------------------------


class CorrectForm(forms.Form):
    raw = forms.CharField(
        label="event JSON",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "spellcheck": "false"}),
        help_text="The event as the till sent it. Fix it and re-apply; nothing changes while "
        "it is still not valid.",
    )
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 100}),
        help_text="What was corrected, and why (kept with the dead letter).",
    )


@admin.register(DeadLetter)
class DeadLetterAdmin(DecisionAdmin):
    changelist_defer = ("raw",)
    list_display = (
        "received_at",
        "store",
        "register_code",
        "seq",
        "event_id",
        "code",
        "short_message",
        "status",
    )
    list_filter = ("status", "store", "register_code", "code")
    list_select_related = ("store",)
    search_fields = ("=event_id", "message")
    search_help_text = "Event id (exact) or words of the message."
    ordering = ("-received_at", "-id")
    fields = (
        "status",
        "store",
        "register_code",
        "seq",
        "event_id",
        "batch_id",
        "position",
        "code",
        "message",
        "received_at",
        "raw_text",
        "resolved_at",
        "resolved_by",
        "resolution_note",
    )
    readonly_fields = fields
    actions = ("reapply_selected", "void_selected")

    @admin.display(description="message")
    def short_message(self, obj: DeadLetter) -> str:
        return obj.message if len(obj.message) <= 80 else f"{obj.message[:79]}…"

    @admin.display(description="raw event (as received)")
    def raw_text(self, obj: DeadLetter) -> SafeString:
        return format_html(
            '<pre class="sync-raw" style="white-space: pre-wrap">{}</pre>', _decoded(obj.raw)
        )

    def get_urls(self) -> list[Any]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/correct/",
                self.admin_site.admin_view(self.correct_view),
                name=f"{info}_correct",
            ),
            path(
                "<path:object_id>/void/",
                self.admin_site.admin_view(self.void_view),
                name=f"{info}_void",
            ),
            *super().get_urls(),
        ]

    # -- re-apply as received ------------------------------------------------------------------

    @admin.action(permissions=["decide"], description="Re-apply as received")
    def reapply_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        rows = list(queryset.filter(status=DeadLetter.Status.OPEN).order_by("pk"))

        def reapply(row: DeadLetter) -> str:
            outcome = dead_letter_reapply(dead_letter=row, actor=request.user)
            return f"Re-applied as received: {outcome['status']}."

        self._decide_each(
            request, rows, reapply, done="Re-applied", refused="Nothing was re-applied"
        )

    # -- correct and re-apply ------------------------------------------------------------------

    def correct_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        dead_letter = self._object_or_404(request, object_id)
        if dead_letter.status != DeadLetter.Status.OPEN:
            return self._already_closed(request, dead_letter)
        if request.method == "POST":
            form = CorrectForm(request.POST)
            if form.is_valid():
                try:
                    outcome = dead_letter_reapply(
                        dead_letter=dead_letter,
                        actor=request.user,
                        raw=form.cleaned_data["raw"].encode("utf-8"),
                        note=form.cleaned_data["note"].strip(),
                    )
                except ApplicationError as exc:
                    add_application_error(form, exc)
                else:
                    message = f"Corrected and re-applied: {outcome['status']}."
                    self.log_change(request, dead_letter, message)
                    self.message_user(request, message, messages.SUCCESS)
                    return HttpResponseRedirect(self._change_url(dead_letter.pk))
        else:
            form = CorrectForm(initial={"raw": _decoded(dead_letter.raw)})
        return self._render(
            request,
            "admin/sync/deadletter/correct.html",
            {"title": "Correct and re-apply", "original": dead_letter, "form": form},
        )

    # -- void ----------------------------------------------------------------------------------

    @admin.action(permissions=["decide"], description="Void (with a reason)")
    def void_selected(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        rows = list(queryset.filter(status=DeadLetter.Status.OPEN).order_by("pk"))
        return self._void(request, rows, via_action=True)

    def void_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        dead_letter = self._object_or_404(request, object_id)
        if dead_letter.status != DeadLetter.Status.OPEN:
            return self._already_closed(request, dead_letter)
        response = self._void(request, [dead_letter], via_action=False)
        return response or HttpResponseRedirect(self._change_url(dead_letter.pk))

    def _void(
        self, request: HttpRequest, rows: list[DeadLetter], *, via_action: bool
    ) -> HttpResponse | None:
        if not rows:
            self.message_user(request, "None of these dead letters is open.", messages.WARNING)
            return None
        confirmed = request.method == "POST" and request.POST.get("post") == "yes"
        form = TextForm(request.POST if confirmed else None)
        form.fields["text"].label = "reason"
        if confirmed and form.is_valid():
            reason = form.cleaned_data["text"]

            def void(row: DeadLetter) -> str:
                dead_letter_void(dead_letter=row, actor=request.user, reason=reason)
                return f"Voided: {reason}"

            self._decide_each(request, rows, void, done="Voided", refused="Nothing was voided")
            return None
        return self._render(
            request,
            "admin/sync/decision_confirm.html",
            {
                "title": "Void dead letters" if len(rows) > 1 else "Void a dead letter",
                "objects": rows,
                "form": form,
                "via_action": via_action,
                "action": "void_selected",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "intro": "These events will be closed without being applied. Their register's "
                "high water moves past them as if received; say why.",
                "submit": "Void",
            },
        )

    def _already_closed(self, request: HttpRequest, dead_letter: DeadLetter) -> HttpResponse:
        self.message_user(
            request,
            f"This dead letter is already {dead_letter.get_status_display()}.",
            messages.WARNING,
        )
        return HttpResponseRedirect(self._change_url(dead_letter.pk))


# --- reconciliation exceptions ------------------------------------------------------------------


@admin.register(ReconciliationException)
class ReconciliationExceptionAdmin(DecisionAdmin):
    list_display = (
        "created_at",
        "type",
        "severity",
        "store",
        "business_date",
        "status",
        "short_message",
    )
    list_filter = ("type", "status", "severity", "store", "business_date")
    list_select_related = ("store",)
    search_fields = ("message",)
    search_help_text = "Words of the message."
    ordering = ("-created_at", "-id")
    fields = (
        "type",
        "severity",
        "status",
        "store",
        "register",
        "business_date",
        "event",
        "message",
        "details_json",
        "created_at",
        "updated_at",
        "resolved_at",
        "resolved_by",
        "resolution_note",
    )
    readonly_fields = fields
    actions = ("acknowledge_selected", "resolve_selected")

    @admin.display(description="message")
    def short_message(self, obj: ReconciliationException) -> str:
        return obj.message if len(obj.message) <= 100 else f"{obj.message[:99]}…"

    @admin.display(description="event")
    def event(self, obj: ReconciliationException) -> str:
        if obj.event_id is None:
            return "-"
        pk = Event.objects.filter(event_id=obj.event_id).values_list("pk", flat=True).first()
        if pk is None:
            return str(obj.event_id)
        return format_html('<a href="{}">{}</a>', _url("sync_event_change", pk), obj.event_id)

    @admin.display(description="details")
    def details_json(self, obj: ReconciliationException) -> SafeString:
        return _pretty(json.dumps(obj.details))

    @admin.action(permissions=["decide"], description="Acknowledge selected exceptions")
    def acknowledge_selected(
        self, request: HttpRequest, queryset: QuerySet[ReconciliationException]
    ) -> None:
        rows = list(queryset.filter(status=ReconciliationException.Status.OPEN).order_by("pk"))

        def acknowledge(row: ReconciliationException) -> str:
            exception_acknowledge(exception=row, actor=request.user)
            return "Acknowledged."

        self._decide_each(
            request, rows, acknowledge, done="Acknowledged", refused="Nothing was acknowledged"
        )

    @admin.action(permissions=["decide"], description="Resolve selected exceptions (with a note)")
    def resolve_selected(
        self, request: HttpRequest, queryset: QuerySet[ReconciliationException]
    ) -> HttpResponse | None:
        rows = list(queryset.exclude(status=ReconciliationException.Status.RESOLVED).order_by("pk"))
        if not rows:
            self.message_user(request, "These exceptions are already resolved.", messages.WARNING)
            return None
        confirmed = request.POST.get("post") == "yes"
        form = TextForm(request.POST if confirmed else None)
        form.fields["text"].label = "note"
        if confirmed and form.is_valid():
            note = form.cleaned_data["text"]

            def resolve(row: ReconciliationException) -> str:
                exception_resolve(exception=row, actor=request.user, note=note)
                return f"Resolved: {note}"

            self._decide_each(
                request, rows, resolve, done="Resolved", refused="Nothing was resolved"
            )
            return None
        return self._render(
            request,
            "admin/sync/decision_confirm.html",
            {
                "title": "Resolve exceptions" if len(rows) > 1 else "Resolve an exception",
                "objects": rows,
                "form": form,
                "via_action": True,
                "action": "resolve_selected",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "intro": "Say what was done about these exceptions; the note is kept with each.",
                "submit": "Resolve",
            },
        )
