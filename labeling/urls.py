from django.urls import path

from . import api, lead_api, taxonomy_api
from .exporters import api as export_api
from .importers import api as import_api
from .privacy import api as privacy_api
from .queue import api as queue_api

urlpatterns = [
    path("projects/", api.ProjectListCreateApi.as_view(), name="project-list"),
    path("projects/<int:project_id>/", api.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<int:project_id>/label-classes/", api.LabelClassListCreateApi.as_view(),
         name="labelclass-list"),
    path("projects/<int:project_id>/label-classes/<int:class_id>/", api.LabelClassDetailApi.as_view(),
         name="labelclass-detail"),
    path("projects/<int:project_id>/label-classes/tree/", taxonomy_api.ClassTreeApi.as_view(),
         name="labelclass-tree"),
    path("projects/<int:project_id>/label-classes/history/", taxonomy_api.ClassHistoryApi.as_view(),
         name="labelclass-history"),
    path("projects/<int:project_id>/label-classes/<int:class_id>/merge/", taxonomy_api.ClassMergeApi.as_view(),
         name="labelclass-merge"),
    path("projects/<int:project_id>/members/", api.MemberListSetApi.as_view(), name="member-list"),
    path("projects/<int:project_id>/members/<int:user_id>/", api.MemberDetailApi.as_view(), name="member-detail"),
    # Queue and review.
    path("projects/<int:project_id>/tasks/next/", queue_api.TaskNextApi.as_view(), name="task-next"),
    path("projects/<int:project_id>/tasks/batch/", queue_api.TaskBatchApi.as_view(), name="task-batch"),
    path("projects/<int:project_id>/stats/", queue_api.ProjectStatsApi.as_view(), name="project-stats"),
    path("projects/<int:project_id>/annotations/", queue_api.AnnotationReviewListApi.as_view(),
         name="annotation-review-list"),
    path("tasks/<int:task_id>/heartbeat/", queue_api.TaskHeartbeatApi.as_view(), name="task-heartbeat"),
    path("tasks/<int:task_id>/release/", queue_api.TaskReleaseApi.as_view(), name="task-release"),
    path("tasks/<int:task_id>/annotations/", queue_api.AnnotationSubmitApi.as_view(), name="annotation-submit"),
    path("annotations/<int:annotation_id>/review/", queue_api.AnnotationReviewApi.as_view(),
         name="annotation-review"),
    # A lead's tools: bulk review, fixing a label in place, the image browser.
    path("projects/<int:project_id>/annotations/review/", lead_api.AnnotationBulkReviewApi.as_view(),
         name="annotation-bulk-review"),
    path("annotations/<int:annotation_id>/fix/", lead_api.AnnotationFixApi.as_view(), name="annotation-fix"),
    path("projects/<int:project_id>/images/browse/", lead_api.ImageBrowserApi.as_view(), name="image-browser"),
    path("images/<int:image_id>/work/", lead_api.ImageWorkApi.as_view(), name="image-work"),
    path("images/<int:image_id>/label/", lead_api.ImageLabelApi.as_view(), name="image-label"),
    path("images/<int:image_id>/segment-assist/", api.SegmentAssistApi.as_view(), name="segment-assist"),
    # Import and export.
    path("projects/<int:project_id>/images/", import_api.ImageImportApi.as_view(), name="image-import"),
    path("projects/<int:project_id>/import-jobs/", import_api.ImportJobListApi.as_view(), name="import-job-list"),
    path("import-jobs/<int:job_id>/", import_api.ImportJobDetailApi.as_view(), name="import-job-detail"),
    path("import-jobs/<int:job_id>/cancel/", import_api.ImportJobCancelApi.as_view(), name="import-job-cancel"),
    path("projects/<int:project_id>/export/", export_api.ExportApi.as_view(), name="export"),
    path("export-jobs/<int:job_id>/", export_api.ExportJobDetailApi.as_view(), name="export-job-detail"),
    path("export-jobs/<int:job_id>/cancel/", export_api.ExportJobCancelApi.as_view(), name="export-job-cancel"),
    path("export-jobs/<int:job_id>/download/", export_api.ExportJobDownloadApi.as_view(), name="export-job-download"),
    # Privacy blurring.
    path("projects/<int:project_id>/privacy/", privacy_api.PrivacySettingsApi.as_view(), name="privacy-settings"),
    path("projects/<int:project_id>/privacy/blur-runs/", privacy_api.BlurRunListCreateApi.as_view(),
         name="blur-run-list"),
    path("projects/<int:project_id>/privacy/original-accesses/", privacy_api.OriginalAccessListApi.as_view(),
         name="original-access-list"),
    path("blur-runs/<int:run_id>/", privacy_api.BlurRunDetailApi.as_view(), name="blur-run-detail"),
    path("blur-runs/<int:run_id>/cancel/", privacy_api.BlurRunCancelApi.as_view(), name="blur-run-cancel"),
    path("images/<int:image_id>/blur/", privacy_api.ImageBlurApi.as_view(), name="image-blur"),
    path("images/<int:image_id>/blur/regions/", privacy_api.BlurRegionCreateApi.as_view(), name="blur-region-create"),
    path("blur-regions/<int:region_id>/", privacy_api.BlurRegionDetailApi.as_view(), name="blur-region-detail"),
    path("images/<int:image_id>/original/", privacy_api.ImageOriginalApi.as_view(), name="image-original"),
]
