"""Export API: thin views over exporters.service.

GET  /api/projects/{id}/export/?format=coco|yolo|voc|labelstudio|cvat|csv[&async=1]
                                   lead; a zip at once for small projects, else 202 {"job_id"}
                                   (409 with job_id while the same export is under way)
GET  /api/export-jobs/{id}/        lead; progress and download_url when done
POST /api/export-jobs/{id}/cancel/ lead; stops the job
GET  /api/export-jobs/{id}/download/   lead; the finished zip
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from vision_project.api_errors import JobAcceptedSerializer, job_accepted

from ..api import get_project_for
from ..models import ExportJob, Role
from ..permissions import get_for_caller
from .service import (
    EXPORT_FORMATS,
    ExportRefused,
    export_check_format,
    export_job_cancel,
    export_job_create,
    export_size,
    export_zip,
)


class ExportJobSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "project",
            "format",
            "originals",
            "status",
            "progress",
            "message",
            "error",
            "download_url",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_download_url(self, job) -> str | None:
        return reverse("export-job-download", args=[job.pk]) if job.result_file else None


class _FormatIsNotARenderer(DefaultContentNegotiation):
    """`?format=` names the export format here, not DRF's response renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _flag(request, name: str) -> bool:
    return request.query_params.get(name) in ("1", "true", "yes")


class ExportApi(APIView):
    content_negotiation_class = _FormatIsNotARenderer

    @extend_schema(
        parameters=[
            OpenApiParameter("format", enum=list(EXPORT_FORMATS), required=True),
            OpenApiParameter("async", bool, description="Always run as a job, whatever the size."),
            OpenApiParameter("originals", bool, description="Admins: the kept originals of blurred images "
                             "instead of their renders; each original written is logged as opened."),
        ],
        responses={(200, "application/zip"): bytes, 202: JobAcceptedSerializer},
    )
    def get(self, request, project_id: int):
        originals = _flag(request, "originals")
        # sharp originals go to admins only; renders (everything else) to leads
        project = get_project_for(request, project_id, Role.ADMIN if originals else Role.LEAD)
        export_format = request.query_params.get("format", "")
        try:
            export_check_format(project=project, export_format=export_format)
        except ExportRefused as exc:
            raise ValidationError({"format": str(exc)}) from None
        as_job = _flag(request, "async")
        if not as_job and export_size(project=project) <= settings.VISION_EXPORT_SYNC_MAX_IMAGES:
            fileobj = export_zip(project=project, export_format=export_format,
                                 originals_for=request.user if originals else None)
            return FileResponse(
                fileobj,
                as_attachment=True,
                content_type="application/zip",
                filename=f"project-{project.pk}-{export_format}.zip",
            )
        job = export_job_create(project=project, export_format=export_format, requested_by=request.user,
                                originals=originals)
        return job_accepted(job, {"job_id": job.pk, "status_url": reverse("export-job-detail", args=[job.pk])})


class ExportJobDetailApi(APIView):
    @extend_schema(responses=ExportJobSerializer)
    def get(self, request, job_id: int):
        return Response(ExportJobSerializer(get_for_caller(ExportJob.objects.select_related("project"), job_id, request.user, Role.LEAD)).data)


class ExportJobCancelApi(APIView):
    @extend_schema(request=None, responses=ExportJobSerializer)
    def post(self, request, job_id: int):
        job = export_job_cancel(job=get_for_caller(ExportJob.objects.select_related("project"), job_id, request.user, Role.LEAD))
        return Response(ExportJobSerializer(job).data)


class ExportJobDownloadApi(APIView):
    """The finished zip, to the project's leads: exports hold every label, so the media
    view, open to annotators, never serves them."""

    content_negotiation_class = _FormatIsNotARenderer

    @extend_schema(responses={(200, "application/zip"): bytes})
    def get(self, request, job_id: int):
        job = get_for_caller(ExportJob.objects.select_related("project"), job_id, request.user, Role.LEAD)
        if job.originals:  # sharp originals: the admins' only
            job = get_for_caller(ExportJob.objects.select_related("project"), job_id, request.user, Role.ADMIN)
        if not job.result_file or not default_storage.exists(job.result_file.name):
            raise NotFound("This export has no file (not finished, or expired); export again.")
        return FileResponse(default_storage.open(job.result_file.name, "rb"), as_attachment=True,
                            content_type="application/zip",
                            filename=f"project-{job.project_id}-{job.format}-{job.pk}.zip")
