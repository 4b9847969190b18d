from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import JSONParser

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/auth/token/", ObtainAuthToken.as_view(parser_classes=[JSONParser]), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("labeling.urls")),
    path("api/", include("training.urls")),
    path("media/<path:path>", views.protected_media, name="media"),
    path("healthz/", views.healthz, name="healthz"),
    path("", include("labeling.page_urls")),
]

handler404 = "vision_project.views.page_not_found"
handler500 = "vision_project.views.server_error"
