from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from erp import views

admin.site.site_header = "Tillbook head office"
admin.site.site_title = "Tillbook"
admin.site.index_title = "Master data, stores and sync"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("erp.api.urls")),
    path("api/v1/", include("books.api.urls")),
]

if settings.ERP_ROLE == "node":
    from django.contrib.staticfiles.views import serve as static_serve

    # A store node also serves the cashier page and its local till API (till-api.md), and
    # the page's own assets: a till has no nginx in front of it and must never need a CDN.
    urlpatterns += [
        path("till/", include("stores.till.urls")),
        path(f"{settings.STATIC_URL.strip('/')}/<path:path>", static_serve, {"insecure": True}),
    ]

handler404 = "erp.views.not_found"
handler500 = "erp.views.server_error"
handler403 = "erp.views.permission_denied"
handler400 = "erp.views.bad_request"
