"""Queue and review API: thin views that check the caller's role in the task's project,
then call one service or selector."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from vision_project.json_input import BoundedJSONField
from vision_project.pagination import PagedList

from ..api import get_project_for
from ..models import Annotation, AnnotationKind, ReviewStatus, Role, Task
from ..permissions import get_for_caller, get_task_for_caller
from ..review import ACCEPT, REJECT, annotation_review, annotations_for_review
from .batch import GRID_BATCH_MAX, task_claim_batch
from .selectors import (
    annotator_done_today,
    image_item,
    prediction_item,
    project_queue_stats,
    task_work_item,
)
from .services import (
    annotation_submit,
    extra_opinion_explanation,
    task_claim_next,
    task_lease_release,
    task_lease_renew,
)


def _task_for(request, task_id: int) -> Task:
    return get_task_for_caller(task_id, request.user, Role.ANNOTATOR)


def _id_list(raw: str, name: str) -> list[int]:
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ValidationError({name: f"expected comma-separated task ids, got {raw!r}"}) from None


class TaskNextApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("exclude", str, description="task ids the caller already works on")],
        responses={200: dict, 204: None},
    )
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ANNOTATOR)
        exclude = _id_list(request.query_params.get("exclude", ""), "exclude")
        task = task_claim_next(project=project, user=request.user, exclude=exclude)
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(task_work_item(task=task, project=project, user=request.user))


class TaskBatchApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("size", int, description=f"1-{GRID_BATCH_MAX} tasks (default 24)"),
                    OpenApiParameter("exclude", str, description="task ids not to return")],
        responses=dict,
    )
    def get(self, request, project_id: int):
        """The grid mode's claim (classification): `{"items": [work item, ...]}`, each as
        `tasks/next/` answers it, leased to the caller; `[]` when nothing is left."""
        project = get_project_for(request, project_id, Role.ANNOTATOR)
        raw_size = request.query_params.get("size", "24")
        if not raw_size.isdigit():
            raise ValidationError({"size": f"size is a number of tasks, 1 to {GRID_BATCH_MAX}; got {raw_size!r}."})
        exclude = _id_list(request.query_params.get("exclude", ""), "exclude")
        tasks = task_claim_batch(project=project, user=request.user, size=int(raw_size), exclude=exclude)
        return Response({"items": [task_work_item(task=task, project=project, user=request.user) for task in tasks]})


class TaskHeartbeatApi(APIView):
    @extend_schema(request=None, responses=dict)
    def post(self, request, task_id: int):
        task = task_lease_renew(task=_task_for(request, task_id), user=request.user)
        return Response({"lease_expires_at": task.lease_expires_at})


class TaskReleaseApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request, task_id: int):
        task_lease_release(task=_task_for(request, task_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AnnotationSubmitApi(APIView):
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=AnnotationKind.choices)
        payload = BoundedJSONField(required=False, allow_null=True)
        prediction_id = serializers.IntegerField(required=False, allow_null=True)
        flag_reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
        time_spent_ms = serializers.IntegerField(min_value=0, required=False, default=0)
        empty = serializers.BooleanField(
            required=False, default=False,
            help_text='detection accept/correct: the person says the image has no objects ("no objects '
                      'here"); a label without boxes is refused without it',
        )

        class Meta:
            ref_name = "AnnotationSubmitInput"

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = Annotation
            fields = ["id", "task_id", "image_id", "kind", "state", "payload", "prediction_id",
                      "flag_reason", "time_spent_ms", "created_at"]

    @extend_schema(
        request=InputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)],
        responses={201: OutputSerializer, 200: OutputSerializer},
    )
    def post(self, request, task_id: int):
        task = _task_for(request, task_id)
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return Response({"detail": "The Idempotency-Key header is required (a client-generated UUID "
                                       "per submit, reused on retries)."}, status=status.HTTP_400_BAD_REQUEST)
        if len(key) > 100:
            return Response({"detail": "The Idempotency-Key header is longer than 100 characters."},
                            status=status.HTTP_400_BAD_REQUEST)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = annotation_submit(task=task, user=request.user, idempotency_key=key,
                                   **serializer.validated_data)
        body = _submitted(result.annotation)
        if result.is_extra_opinion:
            return Response({"detail": extra_opinion_explanation(result.annotation),
                             "annotation_id": result.annotation.pk, **body}, status=status.HTTP_409_CONFLICT)
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


_CREATED_AT = serializers.DateTimeField()


def _submitted(annotation: Annotation) -> dict:
    """AnnotationSubmitApi.OutputSerializer's answer, built without a serializer per submit."""
    return {"id": annotation.pk, "task_id": annotation.task_id, "image_id": annotation.image_id,
            "kind": str(annotation.kind), "state": str(annotation.state), "payload": annotation.payload,
            "prediction_id": annotation.prediction_id, "flag_reason": annotation.flag_reason,
            "time_spent_ms": annotation.time_spent_ms,
            "created_at": _CREATED_AT.to_representation(annotation.created_at)}


class ProjectStatsApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ANNOTATOR)
        return Response({**project_queue_stats(project=project),
                         "mine_today": annotator_done_today(project=project, user=request.user)})


class ReviewAnnotationSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, read_only=True, allow_null=True)
    reviewed_by = serializers.CharField(source="reviewed_by.username", default=None, read_only=True, allow_null=True)
    image = serializers.SerializerMethodField()
    prediction = serializers.SerializerMethodField()

    class Meta:
        model = Annotation
        fields = ["id", "task_id", "image", "author", "kind", "source", "state", "payload", "prediction",
                  "flag_reason", "time_spent_ms", "created_at", "review_status", "reviewed_by",
                  "review_comment", "reviewed_at"]

    def get_image(self, annotation) -> dict:
        return image_item(annotation.image)

    def get_prediction(self, annotation) -> dict | None:
        return prediction_item(annotation.prediction)


class AnnotationReviewListApi(PagedList, APIView):
    class FilterSerializer(serializers.Serializer):
        author = serializers.CharField(required=False)
        label = serializers.IntegerField(required=False)
        kind = serializers.ChoiceField(choices=AnnotationKind.choices, required=False)
        review_status = serializers.ChoiceField(choices=ReviewStatus.choices, required=False)
        disagreement = serializers.BooleanField(required=False, default=False)

    @extend_schema(parameters=[FilterSerializer], responses=ReviewAnnotationSerializer(many=True))
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        annotations = annotations_for_review(project=project, **filters.validated_data)
        return self.page_response(request, annotations, lambda page: ReviewAnnotationSerializer(page, many=True).data)


class AnnotationReviewApi(APIView):
    class InputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=[ACCEPT, REJECT])
        comment = serializers.CharField(required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "AnnotationReviewInput"

    @extend_schema(request=InputSerializer, responses=ReviewAnnotationSerializer)
    def post(self, request, annotation_id: int):
        annotation = get_for_caller(Annotation.objects.select_related("project"), annotation_id, request.user,
                                    Role.LEAD)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        annotation_review(annotation_id=annotation.pk, reviewer=request.user, **serializer.validated_data)
        reviewed = annotations_for_review(project=annotation.project).get(pk=annotation.pk)
        return Response(ReviewAnnotationSerializer(reviewed).data)
