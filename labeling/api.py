"""Project API: thin views that check the caller's role, then call a service or selector."""
import numpy as np
from django.core.files.storage import default_storage
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from PIL import Image as PILImage
from PIL import ImageOps
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.models import Image, LabelClass, Project, TaskType
from vision_project.pagination import PagedList

from . import segment_assist, services, taxonomy
from .models import Membership, Role
from .permissions import get_for_caller, get_project_for_caller, projects_visible_to
from .serializers import (
    LabelClassInputSerializer,
    LabelClassSerializer,
    LabelClassUpdateSerializer,
    MemberInputSerializer,
    MemberRoleSerializer,
    MembershipSerializer,
    ProjectCreateSerializer,
    ProjectOutputSerializer,
    ProjectSettingsSerializer,
)


def _project_queryset():
    return Project.objects.prefetch_related(
        "label_classes", Prefetch("memberships", queryset=Membership.objects.select_related("user"))
    )


def _roles_of(user, projects) -> dict[int, str]:
    if user.is_superuser:
        return {p.pk: Role.ADMIN for p in projects}
    return dict(
        Membership.objects.filter(user=user, project__in=projects).values_list("project_id", "role")
    )


def get_project_for(request, project_id: int, minimum: str) -> Project:
    """The project, after checking the caller holds at least `minimum` in it."""
    return get_project_for_caller(project_id, request.user, minimum)


class ProjectListCreateApi(PagedList, APIView):
    @extend_schema(responses=ProjectOutputSerializer(many=True))
    def get(self, request):
        projects = _project_queryset().filter(pk__in=projects_visible_to(request.user)).order_by("id")

        def serialize(page):
            context = {"roles": _roles_of(request.user, page)}
            return ProjectOutputSerializer(page, many=True, context=context).data

        return self.page_response(request, projects, serialize)

    @extend_schema(request=ProjectCreateSerializer, responses={201: ProjectOutputSerializer})
    def post(self, request):
        if not request.user.is_staff:
            return Response(
                {"detail": "Only staff users can create projects."}, status=status.HTTP_403_FORBIDDEN
            )
        serializer = ProjectCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        project = services.project_create(created_by=request.user, **data)
        project = _project_queryset().get(pk=project.pk)
        context = {"roles": {project.pk: Role.ADMIN}}
        return Response(ProjectOutputSerializer(project, context=context).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectOutputSerializer)
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ANNOTATOR)
        project = _project_queryset().get(pk=project.pk)
        context = {"roles": _roles_of(request.user, [project])}
        return Response(ProjectOutputSerializer(project, context=context).data)

    @extend_schema(request=ProjectSettingsSerializer, responses=ProjectOutputSerializer)
    def patch(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ADMIN)
        serializer = ProjectSettingsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.project_update(project=project, **serializer.validated_data)
        project = _project_queryset().get(pk=project.pk)
        context = {"roles": _roles_of(request.user, [project])}
        return Response(ProjectOutputSerializer(project, context=context).data)


class LabelClassListCreateApi(PagedList, APIView):
    @extend_schema(responses=LabelClassSerializer(many=True))
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ANNOTATOR)
        return self.page_response(
            request, project.label_classes.order_by("order", "id"), lambda page: LabelClassSerializer(page, many=True).data
        )

    @extend_schema(request=LabelClassInputSerializer, responses={201: LabelClassSerializer})
    def post(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.ADMIN)
        serializer = LabelClassInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        label_class = services.label_class_create(project=project, actor=request.user, **serializer.validated_data)
        return Response(LabelClassSerializer(label_class).data, status=status.HTTP_201_CREATED)


class LabelClassDetailApi(APIView):
    @extend_schema(request=LabelClassUpdateSerializer, responses=LabelClassSerializer)
    def patch(self, request, project_id: int, class_id: int):
        project = get_project_for(request, project_id, Role.ADMIN)
        label_class = get_object_or_404(LabelClass, pk=class_id, project=project)
        serializer = LabelClassUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        label_class = services.label_class_update(label_class=label_class, actor=request.user,
                                                  **serializer.validated_data)
        return Response(LabelClassSerializer(label_class).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int, class_id: int):
        """Refused (400) while an annotation or prediction names the class: merge it instead."""
        project = get_project_for(request, project_id, Role.ADMIN)
        label_class = get_object_or_404(LabelClass, pk=class_id, project=project)
        taxonomy.label_class_delete(label_class=label_class, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListSetApi(PagedList, APIView):
    @extend_schema(responses=MembershipSerializer(many=True))
    def get(self, request, project_id: int):
        project = get_project_for(request, project_id, Role.LEAD)
        members = project.memberships.select_related("user").order_by("user__username")
        return self.page_response(request, members, lambda page: MembershipSerializer(page, many=True).data)

    @extend_schema(request=MemberInputSerializer, responses={201: MembershipSerializer})
    def post(self, request, project_id: int):
        """Invite an existing user (by username) with a role."""
        project = get_project_for(request, project_id, Role.ADMIN)
        serializer = MemberInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_invite(project=project, **serializer.validated_data)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    def _membership(self, request, project_id: int, user_id: int) -> Membership:
        project = get_project_for(request, project_id, Role.ADMIN)
        return get_object_or_404(Membership.objects.select_related("user"), project=project, user_id=user_id)

    @extend_schema(request=MemberRoleSerializer, responses=MembershipSerializer)
    def patch(self, request, project_id: int, user_id: int):
        membership = self._membership(request, project_id, user_id)
        serializer = MemberRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_role_change(membership=membership, **serializer.validated_data)
        return Response(MembershipSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int, user_id: int):
        services.membership_remove(membership=self._membership(request, project_id, user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _image_pixels(image: Image) -> np.ndarray:
    """The stored original as RGB, upright as its width and height say."""
    with default_storage.open(image.file.name, "rb") as handle, PILImage.open(handle) as picture:
        return np.asarray(ImageOps.exif_transpose(picture).convert("RGB"))


class SegmentAssistApi(APIView):
    """Box to polygon (OpenCV GrabCut) for the segmentation editor's box assist."""

    class OutputSerializer(serializers.Serializer):
        points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))

        class Meta:
            ref_name = "SegmentAssistOutput"

    @extend_schema(request=dict, responses=OutputSerializer)
    def post(self, request, image_id: int):
        image = get_for_caller(Image.objects.select_related("project"), image_id, request.user, Role.ANNOTATOR)
        if image.project.task_type != TaskType.SEGMENTATION:
            return Response({"detail": f"the box assist draws polygons, for segmentation projects; project "
                                       f"{image.project_id} is {image.project.task_type}"},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            box = segment_assist.box_from_request(request.data.get("box") if isinstance(request.data, dict) else None,
                                                  width=image.width, height=image.height)
            points = segment_assist.polygon_from_box(_image_pixels(image), box)
        except segment_assist.AssistError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"points": points})
