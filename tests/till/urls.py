"""The node's URLs for in-process tests: head office's plus ``/till/`` (what ``erp/urls.py``
routes when ``ERP_ROLE=node``; this test process runs with the default role)."""

from django.urls import include, path

from erp.urls import urlpatterns as hq_urlpatterns

urlpatterns = [*hq_urlpatterns, path("till/", include("stores.till.urls"))]
