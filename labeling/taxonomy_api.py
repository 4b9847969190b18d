"""The class tree's API: the tree with label counts, a merge, and the history of changes.
Adding, renaming, moving, restyling and deleting a class go through the label-class
endpoints (labeling/api.py); this adds what works on the tree as a whole."""
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.models import LabelClass
from vision_project.pagination import PagedList

from . import taxonomy
from .api import get_project_for
from .models import LabelClassEvent, Role


class ClassTreeNodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    color = serializers.CharField()
    hotkey = serializers.CharField()
    parent = serializers.IntegerField(allow_null=True)
    order = serializers.IntegerField()
    depth = serializers.IntegerField(help_text="0 for a top-level class")
    path = serializers.ListField(child=serializers.CharField(), help_text="the ancestors' names, top first")
    children = serializers.ListField(child=serializers.IntegerField())
    labels = serializers.IntegerField(help_text="annotations naming this class (what a merge relabels)")
    subtree_labels = serializers.IntegerField(help_text="annotations naming it or a class below it")


class ClassTreeSerializer(serializers.Serializer):
    classes = ClassTreeNodeSerializer(many=True, help_text="depth-first: each parent before its children")


class ClassTreeApi(APIView):
    @extend_schema(responses=ClassTreeSerializer)
    def get(self, request, project_id: int):
        """The whole tree (one answer, not a page: a tree cut into pages loses its parents):
        the classes depth-first, each with its depth, path and label counts."""
        project = get_project_for(request, project_id, Role.ANNOTATOR)
        return Response(ClassTreeSerializer({"classes": taxonomy.class_tree(project)}).data)


class MergeInputSerializer(serializers.Serializer):
    target = serializers.IntegerField(help_text="the class id that takes over the labels")


class ClassMergeApi(APIView):
    @extend_schema(request=MergeInputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, project_id: int, class_id: int):
        """Merge this class into `target`: its annotations and predictions name the target,
        its children move under it, and it is deleted; one transaction, in the history."""
        project = get_project_for(request, project_id, Role.ADMIN)
        source = get_object_or_404(LabelClass, pk=class_id, project=project)
        data = MergeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        target = LabelClass.objects.filter(pk=data.validated_data["target"], project=project).first()
        if target is None:
            raise serializers.ValidationError({"target": f"Class {data.validated_data['target']} is not a class "
                                                         "of this project."})
        return Response(taxonomy.label_class_merge(source=source, target=target, actor=request.user))


class ClassEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True)

    class Meta:
        model = LabelClassEvent
        fields = ["id", "class_id", "class_name", "action", "actor", "details", "created_at"]


class ClassHistoryApi(PagedList, APIView):
    @extend_schema(responses=ClassEventSerializer(many=True))
    def get(self, request, project_id: int):
        """The changes to the classes, newest first, a page at a time."""
        project = get_project_for(request, project_id, Role.LEAD)
        return self.page_response(request, taxonomy.class_history(project),
                                  lambda page: ClassEventSerializer(page, many=True).data)
