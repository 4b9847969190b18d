"""Privacy blurring endpoints. Leads read the settings; everything else is for admins: changing
them, blur runs, an image's regions and the unblurred original (each opening logged)."""
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.jobs import job_cancel
from core.models import Image, Project
from vision_project.pagination import PagedList

from ..models import BlurRegion, BlurRun, OriginalAccess, PrivacySettings, Role
from ..permissions import get_for_caller
from . import selectors, services


class PrivacySettingsSerializer(serializers.ModelSerializer):
    """Types and choices; the ranges and the class names are checked by the service."""

    detector_classes = serializers.ListField(child=serializers.CharField(max_length=100), required=False)

    class Meta:
        model = PrivacySettings
        fields = list(services.SETTINGS_FIELDS)
        extra_kwargs = {field: {"required": False, "validators": []} for field in services.SETTINGS_FIELDS}

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        for bound in ("min_value", "max_value"):
            kwargs.pop(bound, None)
        return field_class, kwargs


class BlurRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = BlurRun
        fields = ["id", "project", "status", "progress", "message", "error", "redetect", "total", "processed",
                  "stats", "created_at", "started_at", "finished_at"]


class BlurRunInputSerializer(serializers.Serializer):
    redetect = serializers.BooleanField(
        default=False, help_text="Run the detectors again on kept originals (manual and removed regions stay).")


class BlurRegionSerializer(serializers.ModelSerializer):
    class Meta:
        model = BlurRegion
        fields = ["id", "x1", "y1", "x2", "y2", "source", "label", "score", "removed", "created_at"]


class BlurRegionInputSerializer(serializers.Serializer):
    x1 = serializers.FloatField()
    y1 = serializers.FloatField()
    x2 = serializers.FloatField()
    y2 = serializers.FloatField()


class BlurRegionUpdateSerializer(serializers.Serializer):
    removed = serializers.BooleanField()


class OriginalAccessSerializer(serializers.ModelSerializer):
    class Meta:
        model = OriginalAccess
        fields = ["id", "image", "image_name", "user", "username", "accessed_at"]


def _project(request, project_id: int, minimum: str) -> Project:
    return get_for_caller(Project.objects.all(), project_id, request.user, minimum)


def _image(request, image_id: int) -> Image:
    return get_for_caller(Image.objects.select_related("project"), image_id, request.user, Role.ADMIN)


class PrivacySettingsApi(APIView):
    @extend_schema(responses=PrivacySettingsSerializer)
    def get(self, request, project_id: int):
        project = _project(request, project_id, Role.LEAD)
        return Response(PrivacySettingsSerializer(services.privacy_settings_get(project)).data)

    @extend_schema(request=PrivacySettingsSerializer, responses=PrivacySettingsSerializer)
    def patch(self, request, project_id: int):
        project = _project(request, project_id, Role.ADMIN)
        serializer = PrivacySettingsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        saved = services.privacy_settings_update(project=project, **serializer.validated_data)
        return Response(PrivacySettingsSerializer(saved).data)


class BlurRunListCreateApi(PagedList, APIView):
    @extend_schema(responses=BlurRunSerializer(many=True))
    def get(self, request, project_id: int):
        project = _project(request, project_id, Role.ADMIN)
        return self.page_response(request, BlurRun.objects.filter(project=project).order_by("-id"),
                                  lambda page: BlurRunSerializer(page, many=True).data)

    @extend_schema(request=BlurRunInputSerializer, responses={202: BlurRunSerializer})
    def post(self, request, project_id: int):
        """Blur every image of the project again (new settings, a new detector); 409 while a run
        is active."""
        project = _project(request, project_id, Role.ADMIN)
        serializer = BlurRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.blur_run_start(project=project, requested_by=request.user, **serializer.validated_data)
        return Response(BlurRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class BlurRunDetailApi(APIView):
    @extend_schema(responses=BlurRunSerializer)
    def get(self, request, run_id: int):
        return Response(BlurRunSerializer(get_for_caller(BlurRun.objects.all(), run_id, request.user,
                                                         Role.ADMIN)).data)


class BlurRunCancelApi(APIView):
    @extend_schema(request=None, responses=BlurRunSerializer)
    def post(self, request, run_id: int):
        run = get_for_caller(BlurRun.objects.all(), run_id, request.user, Role.ADMIN)
        return Response(BlurRunSerializer(job_cancel(run)).data)


class ImageBlurApi(APIView):
    @extend_schema(responses=dict)
    def get(self, request, image_id: int):
        """The image's blur: state, regions (removed ones too) and the blurred and original URLs."""
        return Response(selectors.image_blur_view(image=_image(request, image_id)))


class BlurRegionCreateApi(APIView):
    @extend_schema(request=BlurRegionInputSerializer, responses={201: BlurRegionSerializer})
    def post(self, request, image_id: int):
        """A missed region, drawn by an admin: stored and rendered at once."""
        image = _image(request, image_id)
        serializer = BlurRegionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        region = services.blur_region_add(image=image, box=serializer.validated_data, user=request.user)
        return Response(BlurRegionSerializer(region).data, status=status.HTTP_201_CREATED)


class BlurRegionDetailApi(APIView):
    @extend_schema(request=BlurRegionUpdateSerializer, responses=BlurRegionSerializer)
    def patch(self, request, region_id: int):
        """Remove a false region (its pixels come back from the original) or bring it back."""
        region = get_object_or_404(BlurRegion.objects.select_related("image"), pk=region_id)
        _image(request, region.image_id)
        serializer = BlurRegionUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        region = services.blur_region_set_removed(region=region, **serializer.validated_data)
        return Response(BlurRegionSerializer(region).data)


class ImageOriginalApi(APIView):
    @extend_schema(responses={(200, "image/*"): bytes})
    def get(self, request, image_id: int):
        """The unblurred original, for admins only; every opening is logged."""
        image = _image(request, image_id)
        try:
            fileobj, name = services.original_open(image=image, user=request.user)
        except services.OriginalGone as exc:
            raise Http404(str(exc)) from None
        response = FileResponse(fileobj, content_type=selectors.content_type_of(name))
        response["Cache-Control"] = "no-store"  # each look is a logged access; no copy stays behind
        return response


class OriginalAccessListApi(PagedList, APIView):
    @extend_schema(responses=OriginalAccessSerializer(many=True))
    def get(self, request, project_id: int):
        """Who opened which original, when: newest first, a page at a time."""
        project = _project(request, project_id, Role.ADMIN)
        return self.page_response(request, OriginalAccess.objects.filter(project=project),
                                  lambda page: OriginalAccessSerializer(page, many=True).data)
