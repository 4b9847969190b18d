"""Import API: thin views over importers.service.

POST /api/projects/{id}/images/    lead; multipart `files` (repeatable; images and .zip),
                                   optional label_format, class_map (JSON), create_classes, replace.
    A few plain files are imported at once: 201 with the per-file report, 207 when some
    items failed. A zip, or more than VISION_IMPORT_SYNC_MAX_FILES files, is staged and
    imported by a worker: 202 {"job_id", "status_url"}.
GET  /api/import-jobs/{id}/        lead; progress and, when done, the report
POST /api/import-jobs/{id}/cancel/ lead; stops the job (images imported so far stay)
GET  /api/projects/{id}/import-jobs/   lead; recent import jobs
"""

from __future__ import annotations

import os
import shutil
import tempfile

from django.conf import settings
from django.db.models.fields.json import KeyTransform
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.storage import stage_folder
from vision_project.api_errors import JobAcceptedSerializer, job_accepted
from vision_project.json_input import BoundedJSONField
from vision_project.pagination import PagedList

from ..api import get_project_for
from ..models import ImportJob, Role
from ..permissions import get_for_caller
from .service import (
    LABEL_FORMATS,
    ImportRefused,
    class_map_parse,
    import_check_format,
    import_job_cancel,
    import_job_create,
    import_run,
    staging_dir,
)


class ImportInputSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), allow_empty=False)
    label_format = serializers.ChoiceField(choices=LABEL_FORMATS, required=False, allow_blank=True)
    class_map = BoundedJSONField(required=False, help_text='{"their category": "our class name"}')
    create_classes = serializers.BooleanField(required=False, default=False)
    replace = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Imported labels replace people's labels; by default they are kept beside them "
        "as extra opinions and counted in the report.",
    )

    def validate_class_map(self, value):
        try:
            return class_map_parse(value)
        except ImportRefused as exc:
            raise serializers.ValidationError(str(exc)) from None


class ImportReportSerializer(serializers.Serializer):
    images = serializers.DictField(child=serializers.IntegerField())
    labels = serializers.DictField(allow_null=True)
    items = serializers.ListField(child=serializers.DictField())


class ImportJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportJob
        fields = [
            "id",
            "project",
            "status",
            "progress",
            "total",
            "processed",
            "message",
            "error",
            "label_format",
            "report",
            "created_at",
            "started_at",
            "finished_at",
        ]


class ImportJobSummarySerializer(ImportJobSerializer):
    """A list row: the report's counts, not its items (the detail has those)."""

    images = serializers.DictField(child=serializers.IntegerField(), source="report_images", read_only=True,
                                   allow_null=True)
    labels = serializers.DictField(source="report_labels", read_only=True, allow_null=True)

    class Meta(ImportJobSerializer.Meta):
        fields = [field for field in ImportJobSerializer.Meta.fields if field != "report"] + ["images", "labels"]


def _stage_uploads(uploads) -> str:
    """Copy the uploads into a new staging folder (unique names); return the folder."""
    folder = tempfile.mkdtemp(dir=staging_dir(), prefix="upload-")
    taken = set()
    for upload in uploads:
        name = os.path.basename(upload.name.replace("\\", "/")) or "upload"
        stem, suffix = os.path.splitext(name)
        copy = 2
        while name.lower() in taken or name.startswith("."):
            name = f"{stem.lstrip('.') or 'upload'} ({copy}){suffix}"
            copy += 1
        taken.add(name.lower())
        with open(os.path.join(folder, name), "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    return folder


class ImageImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": ImportInputSerializer},
        responses={201: ImportReportSerializer, 207: ImportReportSerializer, 202: JobAcceptedSerializer},
    )
    def post(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        serializer = ImportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        uploads = data["files"]
        label_format = data.get("label_format") or ""
        try:
            import_check_format(project=project, label_format=label_format)
        except ImportRefused as exc:
            raise ValidationError({"label_format": str(exc)}) from None
        options = {
            "label_format": label_format,
            "class_map": data.get("class_map") or {},
            "create_classes": data["create_classes"],
            "replace": data["replace"],
        }
        folder = _stage_uploads(uploads)
        run_as_job = len(uploads) > settings.VISION_IMPORT_SYNC_MAX_FILES or any(
            u.name.lower().endswith(".zip") for u in uploads
        )
        if run_as_job:
            job = import_job_create(
                project=project, source_path=stage_folder(folder), requested_by=request.user, staged=True, **options
            )
            return job_accepted(job, {"job_id": job.pk, "status_url": reverse("import-job-detail", args=[job.pk])})
        try:
            files = [(name, os.path.join(folder, name)) for name in sorted(os.listdir(folder))]
            report = import_run(project=project, files=files, author=request.user, **options)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        failed = report["images"]["error"] or (report["labels"] or {}).get("error")
        return Response(report, status=207 if failed else status.HTTP_201_CREATED)


class ImportJobDetailApi(APIView):
    @extend_schema(responses=ImportJobSerializer)
    def get(self, request, job_id: int):
        return Response(ImportJobSerializer(get_for_caller(ImportJob.objects.select_related("project"), job_id, request.user, Role.LEAD)).data)


class ImportJobCancelApi(APIView):
    @extend_schema(request=None, responses=ImportJobSerializer)
    def post(self, request, job_id: int):
        job = import_job_cancel(job=get_for_caller(ImportJob.objects.select_related("project"), job_id, request.user, Role.LEAD))
        return Response(ImportJobSerializer(job).data)


class ImportJobListApi(PagedList, APIView):
    @extend_schema(responses=ImportJobSummarySerializer(many=True))
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        # The report stays in the database: a list row never reads a job's whole report.
        jobs = project.import_jobs.defer("report").annotate(
            report_images=KeyTransform("images", "report"), report_labels=KeyTransform("labels", "report")
        ).order_by("-id")
        return self.page_response(request, jobs, lambda page: ImportJobSummarySerializer(page, many=True).data)


