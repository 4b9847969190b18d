from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import account, health, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/auth/token/", account.TokenApi.as_view(), name="api-token"),
    path("account/", account.account, name="account"),
    path("account/token/revoke/", account.token_revoke, name="account-token-revoke"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start script as a file: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("labeling.urls")),
    path("api/", include("training.urls")),
    path("api/", include("reports.urls")),
    path("media/<path:path>", views.protected_media, name="media"),
    path("healthz/", health.healthz, name="healthz"),
    path("readyz/", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("", include("labeling.page_urls")),
]

handler404 = "vision_project.views.page_not_found"
handler500 = "vision_project.views.server_error"
