"""A lead's API beyond single reviews: bulk review, fixing a label in place, the image
browser, and an image opened in the editor."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.models import Image, Split
from vision_project.json_input import BoundedJSONField

from .api import get_project_for
from .browse import STATUSES, browser_page
from .models import Annotation, Role
from .permissions import get_for_caller
from .queue.api import ReviewAnnotationSerializer
from .queue.selectors import image_item, prediction_item
from .review import (
    ACCEPT,
    BULK_REVIEW_MAX,
    REJECT,
    annotations_for_review,
    annotations_review_bulk,
    label_fix,
)
from .selectors import ACCEPTED_LABEL


class AnnotationBulkReviewApi(APIView):
    class InputSerializer(serializers.Serializer):
        ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=BULK_REVIEW_MAX)
        decision = serializers.ChoiceField(choices=[ACCEPT, REJECT])
        comment = serializers.CharField(required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "AnnotationBulkReviewInput"

    @extend_schema(request=InputSerializer, responses=dict)
    def post(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        results = annotations_review_bulk(project=project, annotation_ids=data.validated_data["ids"],
                                          reviewer=request.user, decision=data.validated_data["decision"],
                                          comment=data.validated_data["comment"])
        return Response({"results": results, "reviewed": sum(1 for r in results if r["ok"])})


class LabelFixInputSerializer(serializers.Serializer):
    payload = BoundedJSONField(required=False, allow_null=True, default=None)
    empty = serializers.BooleanField(required=False, default=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="")

    class Meta:
        ref_name = "LabelFixInput"


class AnnotationFixApi(APIView):
    @extend_schema(request=LabelFixInputSerializer, responses={201: ReviewAnnotationSerializer})
    def post(self, request, annotation_id: int):
        annotation = get_for_caller(Annotation.objects.select_related("project", "image"), annotation_id,
                                    request.user, Role.LEAD)
        data = LabelFixInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fixed = label_fix(image=annotation.image, lead=request.user, replaces=annotation, **data.validated_data)
        return Response(_review_item(fixed), status=201)


class ImageLabelApi(APIView):
    @extend_schema(request=LabelFixInputSerializer, responses={201: ReviewAnnotationSerializer})
    def post(self, request, image_id: int):
        image = get_for_caller(Image.objects.select_related("project"), image_id, request.user, Role.LEAD)
        data = LabelFixInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fixed = label_fix(image=image, lead=request.user, **data.validated_data)
        return Response(_review_item(fixed), status=201)


def _review_item(annotation: Annotation) -> dict:
    return ReviewAnnotationSerializer(annotations_for_review(project=annotation.project).get(pk=annotation.pk)).data


class ImageWorkApi(APIView):
    """One image for the editor, opened by a lead (no task, no lease): the image, the
    deployed model's pre-label, the taxonomy and the image's current label."""

    @extend_schema(responses=dict)
    def get(self, request, image_id: int):
        image = get_for_caller(Image.objects.select_related("project"), image_id, request.user, Role.LEAD)
        project = image.project
        current = (Annotation.objects.filter(ACCEPTED_LABEL, image=image).select_related("author")
                   .order_by("-created_at", "-id").first())
        prediction = (image.predictions.filter(model_version__is_deployed=True)
                      .select_related("model_version").defer("embedding").first())
        return Response({
            "image": image_item(image),
            "prediction": prediction_item(prediction),
            "label_classes": list(project.label_classes.values("id", "name", "color", "hotkey", "parent")),
            "task_type": project.task_type,
            "project_id": project.pk,
            "label": None if current is None else {
                "annotation_id": current.pk, "payload": current.payload, "kind": current.kind,
                "author": current.author.username if current.author else None,
                "review_status": current.review_status,
            },
        })


class ImageBrowserApi(APIView):
    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, allow_blank=True, default="")
        label = serializers.IntegerField(required=False)
        annotator = serializers.CharField(required=False, allow_blank=True, default="")
        status = serializers.ChoiceField(choices=STATUSES, required=False, allow_blank=True, default="")
        split = serializers.ChoiceField(choices=Split.choices, required=False, allow_blank=True, default="")
        uncertainty_min = serializers.FloatField(required=False)
        disagreement = serializers.BooleanField(required=False, default=False)
        after = serializers.IntegerField(required=False)
        limit = serializers.IntegerField(required=False, default=60, min_value=1, max_value=200)

        class Meta:
            ref_name = "ImageBrowserFilter"

    @extend_schema(parameters=[FilterSerializer], responses=dict)
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(browser_page(project=project, **filters.validated_data))
