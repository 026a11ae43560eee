from django.urls import path

from sync.api.views import PullView, PushView, StatusView

urlpatterns = [
    path("push", PushView.as_view(), name="sync-push"),
    path("pull", PullView.as_view(), name="sync-pull"),
    path("status", StatusView.as_view(), name="sync-status"),
]
