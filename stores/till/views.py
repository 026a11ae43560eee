"""The cashier page: server-rendered, with a little plain JavaScript (``static/till/till.js``)
that talks to the till API with the page's session. Everything is served by the node itself.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from stores.till import selectors, services
from stores.till.api.authentication import SESSION_KEY
from stores.till.auth import cashier_authenticate, cashier_current
from stores.till.errors import CashierUnauthenticated, PinLocked


def _context(request: HttpRequest, **extra: object) -> dict[str, object]:
    code = request.session.get(SESSION_KEY)
    cashier = cashier_current(code) if code else None
    session = services.session_current()
    return {
        "cashier": cashier,
        "till_session": selectors.session_view(session) if session else None,
        "status": selectors.till_status(),
        **extra,
    }


@require_http_methods(["GET"])
def till_page(request: HttpRequest) -> HttpResponse:
    context = _context(request)
    if context["cashier"] is None:
        return render(request, "till/signin.html", context)
    return render(request, "till/till.html", context)


@require_http_methods(["POST"])
def signin(request: HttpRequest) -> HttpResponse:
    try:
        cashier = cashier_authenticate(
            code=request.POST.get("code", ""), pin=request.POST.get("pin", "")
        )
    except (CashierUnauthenticated, PinLocked) as exc:
        context = _context(request, error=exc.message, code=request.POST.get("code", ""))
        response = render(request, "till/signin.html", context, status=exc.status)
        for name, value in exc.headers.items():
            response[name] = value
        return response
    request.session.cycle_key()
    request.session[SESSION_KEY] = cashier.code
    return redirect("till:page")


@require_http_methods(["POST"])
def signout(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return redirect("till:page")
