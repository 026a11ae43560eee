from django.urls import path

from sync.api.views import PushView, StatusView

urlpatterns = [
    path("push", PushView.as_view(), name="sync-push"),
    path("status", StatusView.as_view(), name="sync-status"),
]
