"""``/till/``: the cashier page and the till API (node mode only, see ``erp/urls.py``)."""

from django.urls import include, path

from stores.till import views

app_name = "till"

urlpatterns = [
    path("", views.till_page, name="page"),
    path("signin", views.signin, name="signin"),
    path("signout", views.signout, name="signout"),
    path("api/v1/", include("stores.till.api.urls")),
]
