from django.urls import path

from . import api

urlpatterns = [
    path("projects/<int:project_id>/reports/<slug:name>/", api.ReportApi.as_view(), name="report"),
]
