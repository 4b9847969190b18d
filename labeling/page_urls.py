from django.urls import path

from . import lead_pages, pages, taxonomy_pages
from .privacy import pages as privacy_pages

urlpatterns = [
    path("", pages.project_list, name="home"),
    path("projects/new/", pages.project_new, name="page-project-new"),
    path("projects/<int:project_id>/annotate/", pages.annotate, name="page-annotate"),
    path("projects/<int:project_id>/review/", pages.review, name="page-review"),
    path("projects/<int:project_id>/images/", lead_pages.images, name="page-images"),
    path("projects/<int:project_id>/images/<int:image_id>/", lead_pages.image_edit, name="page-image-edit"),
    path("projects/<int:project_id>/images/<int:image_id>/privacy/", privacy_pages.image_privacy,
         name="page-image-privacy"),
    path("projects/<int:project_id>/upload/", pages.upload, name="page-upload"),
    path("projects/<int:project_id>/export/", pages.export, name="page-export"),
    path("projects/<int:project_id>/reports/", pages.reports, name="page-reports"),
    path("projects/<int:project_id>/models/", pages.models, name="page-models"),
    path("projects/<int:project_id>/settings/", pages.project_settings, name="page-settings"),
    path("projects/<int:project_id>/classes/", taxonomy_pages.taxonomy, name="page-taxonomy"),
    path("projects/<int:project_id>/discover/", taxonomy_pages.clusters, name="page-clusters"),
    path("projects/<int:project_id>/annotate/grid/", taxonomy_pages.annotate_grid, name="page-annotate-grid"),
]
