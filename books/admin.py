"""Finance and auditor views of the books in the admin.

- Accounts: the chart, editable by finance (with history).
- Periods: status and close history; per period the trial balance, the close report (page and
  CSV), the journal as CSV and as an hledger/ledger text file, and the "close" action.
- Journal entries and lines: read-only (posted entries are never changed); an entry shows its
  lines and drills down to the store-day ranges and sales it carries; "reverse" posts the
  linked reversal.
- General ledger per account, with each line linked to its entry.
- Jobs: state and progress of close jobs.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from simple_history.admin import SimpleHistoryAdmin

from books import close, export, selectors, services
from books.models import Account, CloseReport, FiscalPeriod, Job, JournalEntry, JournalLine
from erp.errors import ApplicationError


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "kind", "role", "store", "tax_code", "active", "ledger_link"]
    list_filter = ["kind", "role", "active"]
    search_fields = ["code", "name"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # accounts with lines are kept; deactivate instead

    @admin.display(description="general ledger")
    def ledger_link(self, obj: Account) -> str:
        return format_html(
            '<a href="{}">ledger</a>', reverse("admin:books_account_ledger", args=[obj.pk])
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/ledger/",
                self.admin_site.admin_view(self.ledger_view),
                name="books_account_ledger",
            ),
            *super().get_urls(),
        ]

    def ledger_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm("books.view_journalline"):
            raise PermissionDenied
        account = Account.objects.get(pk=pk)
        code = request.GET.get("period") or None
        lines = list(selectors.general_ledger(account=account, period_code=code)[:2000])
        running = selectors.ZERO
        rows = []
        for line in lines:
            running += line.debit - line.credit
            rows.append((line, running))
        context = {
            **self.admin_site.each_context(request),
            "title": f"General ledger {account}",
            "account": account,
            "rows": rows,
            "period": code,
            "periods": FiscalPeriod.objects.order_by("-start"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "books/general_ledger.html", context)


@admin.register(FiscalPeriod)
class FiscalPeriodAdmin(SimpleHistoryAdmin):
    list_display = ["code", "status", "closed_at", "closed_by", "links"]
    list_filter = ["status"]
    readonly_fields = [
        "code",
        "start",
        "end",
        "status",
        "closed_at",
        "closed_by",
        "override_reason",
    ]
    actions = ["start_close"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # periods are created by posting, one per month

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="books")
    def links(self, obj: FiscalPeriod) -> str:
        def url(name: str) -> str:
            return reverse(f"admin:books_period_{name}", args=[obj.code])

        return format_html(
            '<a href="{}">trial balance</a> · <a href="{}">close report</a> · '
            '<a href="{}">report CSV</a> · <a href="{}">journal CSV</a> · '
            '<a href="{}">journal (hledger)</a>',
            url("trial_balance"), url("report"), url("report_csv"), url("journal_csv"),
            url("journal_text"),
        )  # fmt: skip

    @admin.action(description="Close the selected periods (starts a close job)")
    def start_close(self, request: HttpRequest, queryset) -> None:
        if not request.user.has_perms(["books.add_job", "books.change_fiscalperiod"]):
            raise PermissionDenied
        for period in queryset.order_by("start"):
            try:
                job = close.period_close_start(period=period, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{period.code}: {exc.message}", messages.ERROR)
                continue
            self.message_user(request, f"{period.code}: close job {job.pk} started.")

    def get_urls(self):
        def view(name: str, fn):
            return path(
                f"<str:code>/{name.replace('_', '-')}/",
                self.admin_site.admin_view(fn),
                name=f"books_period_{name}",
            )

        return [
            view("trial_balance", self.trial_balance_view),
            view("report", self.report_view),
            view("report_csv", self.report_csv_view),
            view("journal_csv", self.journal_csv_view),
            view("journal_text", self.journal_text_view),
            *super().get_urls(),
        ]

    def _period(self, request: HttpRequest, code: str) -> FiscalPeriod:
        if not request.user.has_perm("books.view_journalline"):
            raise PermissionDenied
        return selectors.period_get(code=code)

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "title": title,
                "opts": self.model._meta, **extra}  # fmt: skip

    def trial_balance_view(self, request: HttpRequest, code: str) -> HttpResponse:
        period = self._period(request, code)
        rows = selectors.trial_balance(period_code=code)
        context = self._context(
            request,
            f"Trial balance {period.code}",
            period=period,
            rows=rows,
            debit=sum((r.debit for r in rows), selectors.ZERO),
            credit=sum((r.credit for r in rows), selectors.ZERO),
        )
        return TemplateResponse(request, "books/trial_balance.html", context)

    def _report(self, period: FiscalPeriod) -> dict[str, Any]:
        stored = CloseReport.objects.filter(period=period).first()
        return stored.content if stored else close.close_report_build(period=period)

    def report_view(self, request: HttpRequest, code: str) -> HttpResponse:
        period = self._period(request, code)
        context = self._context(
            request,
            f"Close report {period.code}",
            period=period,
            report=(report := self._report(period)),
            sections=[
                (name.replace("_", " ").capitalize(), rows)
                for name, rows in report.items()
                if isinstance(rows, list)
            ],
            stored=CloseReport.objects.filter(period=period).exists(),
            jobs=period.jobs.order_by("-created_at"),
        )
        return TemplateResponse(request, "books/close_report.html", context)

    def report_csv_view(self, request: HttpRequest, code: str) -> HttpResponse:
        period = self._period(request, code)
        return _download(report_csv(self._report(period)), f"close-{code}.csv", "text/csv")

    def journal_csv_view(self, request: HttpRequest, code: str) -> HttpResponse:
        period = self._period(request, code)
        return _download(export.journal_csv(period=period), f"journal-{code}.csv", "text/csv")

    def journal_text_view(self, request: HttpRequest, code: str) -> HttpResponse:
        period = self._period(request, code)
        return _download(
            export.journal_text(period=period), f"journal-{code}.journal", "text/plain"
        )


def _download(body: str, name: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def report_csv(report: dict[str, Any]) -> str:
    """The close report as one CSV: a ``section`` column, then each section's own columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for section in (
        "trial_balance", "sales_and_tax_by_store", "stock_valuation", "late_arrivals",
        "exceptions",
    ):  # fmt: skip
        rows = report.get(section, [])
        writer.writerow([section])
        if rows:
            writer.writerow(list(rows[0]))
            for row in rows:
                writer.writerow([row[k] for k in rows[0]])
        writer.writerow([])
    return out.getvalue()


class JournalLineInline(admin.TabularInline):
    model = JournalLine
    fields = ["account", "debit", "credit", "currency", "store", "tax_code", "source"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "date", "kind", "store", "business_date", "late", "description"]
    list_filter = ["kind", "late", "period", "store"]
    search_fields = ["description"]
    date_hierarchy = "date"
    show_full_result_count = False
    inlines = [JournalLineInline]
    readonly_fields = [
        "uuid", "kind", "status", "date", "period", "store", "business_date", "late",
        "description", "reverses", "created_at", "created_by", "sources",
    ]  # fmt: skip
    actions = ["reverse"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("store", "period")

    @admin.display(description="source events")
    def sources(self, obj: JournalEntry) -> str:
        found = selectors.entry_sources(entry=obj, limit=50)
        parts = [
            format_html(
                "<li>{} {}: sale lines {}–{}, tenders {}–{}, stock moves {}–{}</li>",
                p.store_id, p.business_date, p.line_low, p.line_high, p.tender_low,
                p.tender_high, p.move_low, p.move_high,
            )
            for p in found["postings"]
        ]  # fmt: skip
        parts += [
            format_html(
                '<li><a href="{}">{} {}</a> {}</li>',
                reverse("admin:stores_sale_change", args=[s.pk]) if _has_sale_admin() else "#",
                s.type,
                s.receipt_no,
                s.gross,
            )
            for s in found["sales"]
        ]
        parts += [format_html("<li>{} {}</li>", s.kind, s.key) for s in found["sources"]]
        # every part was escaped by format_html above
        return format_html("<ul>{}</ul>", mark_safe("".join(parts)))

    @admin.action(description="Reverse the selected entries (linked reversal entries)")
    def reverse(self, request: HttpRequest, queryset) -> None:
        if not request.user.has_perm("books.add_journalentry"):
            raise PermissionDenied
        for entry in queryset:
            try:
                new = services.journal_entry_reverse(entry=entry, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"#{entry.pk}: {exc.message}", messages.ERROR)
                continue
            self.message_user(request, f"#{entry.pk} reversed by #{new.pk}.")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _has_sale_admin() -> bool:
    from stores.models import Sale

    return admin.site.is_registered(Sale)


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "period", "state", "step", "progress", "attempts", "created_at",
                    "finished_at"]  # fmt: skip
    list_filter = ["state", "kind"]
    readonly_fields = [
        "kind", "period", "state", "step", "progress", "message", "result", "override_reason",
        "attempts", "created_by", "created_at", "started_at", "finished_at",
    ]  # fmt: skip

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        return HttpResponseRedirect(request.path)
