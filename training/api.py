"""Training, model-version and prelabel API: thin views that check the caller's role in the
project, then call one service or selector."""
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.models import ModelVersion
from labeling.api import get_project_for
from labeling.models import Role
from labeling.permissions import get_for_caller
from vision_project.api_errors import job_accepted
from vision_project.pagination import PagedList

from . import services
from .models import EmbeddingRun, PrelabelRun, TrainingRun
from .serializers import (
    EmbeddingRunInputSerializer,
    EmbeddingRunOutputSerializer,
    ModelVersionOutputSerializer,
    PrelabelRunOutputSerializer,
    TrainingRunInputSerializer,
    TrainingRunOutputSerializer,
)


def _get_checked(request, queryset, pk: int, minimum: str):
    """A row of a project, after checking the caller's role there (strangers get 404)."""
    return get_for_caller(queryset.select_related("project"), pk, request.user, minimum)


def _run_queryset():
    return TrainingRun.objects.select_related("requested_by", "model_version")


class TrainingRunListStartApi(PagedList, APIView):
    @extend_schema(responses=TrainingRunOutputSerializer(many=True))
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        runs = _run_queryset().filter(project=project).order_by("-id")
        return self.page_response(request, runs, lambda page: TrainingRunOutputSerializer(page, many=True).data)

    @extend_schema(request=TrainingRunInputSerializer, responses={202: TrainingRunOutputSerializer})
    def post(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ADMIN)
        serializer = TrainingRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.training_run_start(project=project, requested_by=request.user, **serializer.validated_data)
        run = _run_queryset().get(pk=run.pk)
        return job_accepted(run, TrainingRunOutputSerializer(run).data)


class TrainingRunDetailApi(APIView):
    @extend_schema(responses=TrainingRunOutputSerializer)
    def get(self, request, run_id: int):
        run = _get_checked(request, _run_queryset(), run_id, Role.LEAD)
        return Response(TrainingRunOutputSerializer(run).data)


class TrainingRunCancelApi(APIView):
    @extend_schema(request=None, responses={202: TrainingRunOutputSerializer})
    def post(self, request, run_id: int):
        run = _get_checked(request, _run_queryset(), run_id, Role.ADMIN)
        run = services.training_run_cancel(run=run)
        return Response(TrainingRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ModelVersionListApi(PagedList, APIView):
    @extend_schema(responses=ModelVersionOutputSerializer(many=True))
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        versions = ModelVersion.objects.filter(project=project).select_related("parent", "training_run").order_by("-number")
        return self.page_response(request, versions, lambda page: ModelVersionOutputSerializer(page, many=True).data)


class ModelVersionDeployApi(APIView):
    @extend_schema(request=None, responses=ModelVersionOutputSerializer)
    def post(self, request, version_id: int):
        version = _get_checked(request, ModelVersion.objects.all(), version_id, Role.ADMIN)
        version = services.model_version_deploy(version=version, requested_by=request.user)
        version = ModelVersion.objects.select_related("parent", "training_run").get(pk=version.pk)
        return Response(ModelVersionOutputSerializer(version).data)


class PrelabelStartApi(APIView):
    @extend_schema(request=None, responses={202: PrelabelRunOutputSerializer})
    def post(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ADMIN)
        run = services.prelabel_run_start(project=project, requested_by=request.user)
        run = PrelabelRun.objects.select_related("model_version").get(pk=run.pk)
        return job_accepted(run, PrelabelRunOutputSerializer(run).data)


class PrelabelRunDetailApi(APIView):
    @extend_schema(responses=PrelabelRunOutputSerializer)
    def get(self, request, run_id: int):
        run = _get_checked(request, PrelabelRun.objects.select_related("model_version"), run_id, Role.LEAD)
        return Response(PrelabelRunOutputSerializer(run).data)


class PrelabelRunCancelApi(APIView):
    @extend_schema(request=None, responses={202: PrelabelRunOutputSerializer})
    def post(self, request, run_id: int):
        run = _get_checked(request, PrelabelRun.objects.select_related("model_version"), run_id, Role.ADMIN)
        run = services.prelabel_run_cancel(run=run)
        return Response(PrelabelRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


def _embedding_run_queryset():
    return EmbeddingRun.objects.select_related("requested_by")


class EmbeddingRunStartApi(APIView):
    @extend_schema(request=EmbeddingRunInputSerializer, responses={202: EmbeddingRunOutputSerializer})
    def post(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ADMIN)
        serializer = EmbeddingRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.embedding_run_start(project=project, requested_by=request.user, **serializer.validated_data)
        run = _embedding_run_queryset().get(pk=run.pk)
        return job_accepted(run, EmbeddingRunOutputSerializer(run).data)


class EmbeddingRunDetailApi(APIView):
    @extend_schema(responses=EmbeddingRunOutputSerializer)
    def get(self, request, run_id: int):
        run = _get_checked(request, _embedding_run_queryset(), run_id, Role.LEAD)
        return Response(EmbeddingRunOutputSerializer(run).data)


class EmbeddingRunCancelApi(APIView):
    @extend_schema(request=None, responses={202: EmbeddingRunOutputSerializer})
    def post(self, request, run_id: int):
        run = _get_checked(request, _embedding_run_queryset(), run_id, Role.ADMIN)
        run = services.embedding_run_cancel(run=run)
        return Response(EmbeddingRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingCurvesApi(APIView):
    """Per-epoch loss and metric of each of the project's recent runs (newest first)."""

    @extend_schema(responses=dict)
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        runs = TrainingRun.objects.filter(project=project).order_by("-id").values(
            "id", "status", "total_epochs", "history")[:20]
        return Response({"runs": list(runs)})
