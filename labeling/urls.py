from django.urls import path

from . import api

urlpatterns = [
    path("projects/", api.ProjectListCreateApi.as_view(), name="project-list"),
    path("projects/<int:project_id>/", api.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<int:project_id>/label-classes/", api.LabelClassListCreateApi.as_view(),
         name="labelclass-list"),
    path("projects/<int:project_id>/label-classes/<int:class_id>/", api.LabelClassDetailApi.as_view(),
         name="labelclass-detail"),
    path("projects/<int:project_id>/members/", api.MemberListSetApi.as_view(), name="member-list"),
]
