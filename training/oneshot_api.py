"""One-shot taxonomisation API (docs/oneshot.md): class examples, proposals, similar images,
near-duplicates, Discover clusters, bulk labels and the vision-language assist. Thin views:
check the caller's role in the project, call one service or selector."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.models import Image, LabelClass
from labeling.api import get_project_for
from labeling.models import Role
from labeling.permissions import get_for_caller
from labeling.queue.bulk import MAX_BULK_IMAGES, annotations_bulk_submit, bulk_label_class

from . import assist, discover, oneshot, similarity
from .models import AssistRequest, NearDuplicate, PrelabelRun
from .serializers import ModelVersionOutputSerializer, PrelabelRunOutputSerializer


def _int_param(request, name: str, default: int, least: int, most: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: f"expected a whole number, got {raw!r}"}) from None
    if not least <= value <= most:
        raise ValidationError({name: f"must be between {least} and {most}; got {value}"})
    return value


class ClassExampleListApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        return Response({"classes": oneshot.class_examples_list(project)})


class ClassExampleSetApi(APIView):
    class InputSerializer(serializers.Serializer):
        image_ids = serializers.ListField(child=serializers.IntegerField(), allow_empty=True, max_length=50)

        class Meta:
            ref_name = "ClassExampleSetInput"

    @extend_schema(request=InputSerializer, responses=dict)
    def put(self, request, project_id: int, class_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        label_class = project.label_classes.filter(pk=class_id).first()
        if label_class is None:
            return Response({"detail": f"Class {class_id} is not a class of project {project.pk}."},
                            status=status.HTTP_404_NOT_FOUND)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        oneshot.class_examples_set(label_class=label_class, image_ids=data.validated_data["image_ids"],
                                   user=request.user)
        return Response(oneshot.class_examples_list(project, label_class)[0])


class ProposalsApi(APIView):
    class InputSerializer(serializers.Serializer):
        method = serializers.ChoiceField(choices=["prototype", "propagation"], default="prototype")

        class Meta:
            ref_name = "ProposalsInput"

    @extend_schema(responses=dict)
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ANNOTATOR)
        order = request.query_params.get("order", "-confidence")
        if order not in ("confidence", "-confidence"):
            raise ValidationError({"order": f"confidence or -confidence; got {order!r}"})
        raw_class = request.query_params.get("label_class")
        label_class = _int_param(request, "label_class", 0, 1, 2**62) if raw_class else None
        return Response(oneshot.proposals_page(
            project=project, label_class=label_class, order=order,
            limit=_int_param(request, "limit", 60, 1, 500), offset=_int_param(request, "offset", 0, 0, 10**9)))

    @extend_schema(request=InputSerializer, responses={202: dict})
    def post(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = oneshot.proposals_create(project=project, method=data.validated_data["method"],
                                           requested_by=request.user)
        version = outcome.version
        run = (PrelabelRun.objects.select_related("model_version").get(pk=outcome.prelabel_run.pk)
               if outcome.prelabel_run else None)
        return Response({"model_version": ModelVersionOutputSerializer(version).data,
                         "prelabel_run": PrelabelRunOutputSerializer(run).data if run else None,
                         "decision": version.comparison["decision"], "reason": version.comparison["reason"]},
                        status=status.HTTP_202_ACCEPTED)


class SimilarImagesApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request, image_id: int):
        image = get_for_caller(Image.objects.select_related("project"), image_id, request.user, Role.ANNOTATOR)
        scope = request.query_params.get("scope", "unlabeled")
        if scope not in ("unlabeled", "all"):
            raise ValidationError({"scope": f"unlabeled or all; got {scope!r}"})
        k = _int_param(request, "k", 20, 1, similarity.MAX_K)
        try:
            results = similarity.similar_images(image=image, k=k, scope=scope)
        except (similarity.NoEmbedding, similarity.IndexNotReady) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response({"image_id": image.pk, "scope": scope, "results": results})


class NearDuplicateListApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        return Response(similarity.near_duplicates_page(
            project=project, include_dismissed=request.query_params.get("include_dismissed") in ("1", "true"),
            limit=_int_param(request, "limit", 100, 1, 500), offset=_int_param(request, "offset", 0, 0, 10**9)))


class NearDuplicateDismissApi(APIView):
    @extend_schema(request=None, responses=dict)
    def post(self, request, duplicate_id: int):
        row = get_for_caller(NearDuplicate.objects.select_related("image", "duplicate_of"), duplicate_id,
                             request.user, Role.LEAD)
        row = similarity.near_duplicate_dismiss(row=row, user=request.user)
        return Response(similarity.near_duplicate_item(row))


class ClustersApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        return Response(discover.clusters_compute(
            project=project, method=request.query_params.get("method", "kmeans"),
            k=_int_param(request, "k", 12, 2, 100), members=_int_param(request, "members", 60, 1, 500),
            seed=_int_param(request, "seed", 0, 0, 2**31)))


class BulkLabelsApi(APIView):
    class InputSerializer(serializers.Serializer):
        idempotency_key = serializers.CharField(max_length=80)
        label_class = serializers.IntegerField(required=False, allow_null=True, default=None)
        new_class_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        image_ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=MAX_BULK_IMAGES)
        time_spent_ms = serializers.IntegerField(min_value=0, required=False, default=0)

        class Meta:
            ref_name = "BulkLabelsInput"

    @extend_schema(request=InputSerializer, responses=dict)
    def post(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ANNOTATOR)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        new_name = values["new_class_name"].strip()
        if new_name and not LabelClass.objects.filter(project=project, name=new_name).exists():
            get_project_for(request, project_id, Role.LEAD)  # naming a new class is a lead's call
        label_class = bulk_label_class(project=project, label_class_id=values["label_class"],
                                       new_class_name=new_name)
        result = annotations_bulk_submit(project=project, user=request.user, label_class=label_class,
                                         image_ids=values["image_ids"], idempotency_key=values["idempotency_key"],
                                         time_spent_ms=values["time_spent_ms"])
        return Response({"label_class": {"id": label_class.pk, "name": label_class.name},
                         "created": result.count("created"), "replayed": result.count("replayed"),
                         "results": result.results})


class AssistStatusApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        return Response(assist.assist_status(project))


class AssistSuggestApi(APIView):
    purpose = ""

    class InputSerializer(serializers.Serializer):
        image_ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=100)

        class Meta:
            ref_name = "AssistSuggestInput"

    @extend_schema(request=InputSerializer, responses=dict)
    def post(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            reply = assist.assist_suggest(project=project, user=request.user, purpose=self.purpose,
                                          image_ids=data.validated_data["image_ids"])
        except assist.AssistError as exc:
            return Response({"detail": exc.detail, "log_id": exc.log_id}, status=exc.status_code)
        key = "suggestions" if self.purpose == "cluster_names" else "taxonomy"
        return Response({key: reply.result, "log_id": reply.log_id})


class AssistClusterNamesApi(AssistSuggestApi):
    purpose = "cluster_names"


class AssistTaxonomyApi(AssistSuggestApi):
    purpose = "taxonomy"


class AssistLogApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ADMIN)
        rows = AssistRequest.objects.filter(project=project).select_related("user").order_by("-id")[:200]
        return Response({"items": [
            {"id": r.pk, "created_at": r.created_at, "user": r.user.username if r.user else None,
             "endpoint": r.endpoint, "model": r.model_name, "purpose": r.purpose, "status": r.status,
             "http_status": r.http_status, "duration_ms": r.duration_ms, "images": r.images,
             "request_bytes": r.request_bytes, "detail": r.detail} for r in rows]})
