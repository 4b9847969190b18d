from django.contrib import admin
from django.core.exceptions import ValidationError

from core.models import ModelVersion, Prediction, Project
from labeling.admin import ProjectAdmin as LabelingProjectAdmin
from vision_project.api_errors import Conflict

from .models import EmbeddingRun, ImageEmbedding, PrelabelRun, TrainingRun
from .services import model_version_deploy, training_run_start


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "number", "backend", "status", "is_deployed", "primary_metric", "created_at"]
    list_filter = ["project", "status"]
    readonly_fields = ["is_deployed"]  # changed only by the deploy operation
    actions = ["deploy"]

    @admin.action(description="Deploy (or roll back to) the selected version")
    def deploy(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to deploy.", level="error")
            return
        try:
            version = model_version_deploy(version=queryset.get(), requested_by=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), level="error")
            return
        self.message_user(request, f"{version} deployed; the pool is being re-scored.")


@admin.register(TrainingRun, PrelabelRun, EmbeddingRun)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status"]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "model_version", "uncertainty", "created_at"]
    raw_id_fields = ["image"]


@admin.register(ImageEmbedding)
class ImageEmbeddingAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "image", "model_key", "created_at"]
    list_filter = ["model_key"]
    list_select_related = ["project", "image"]
    raw_id_fields = ["image"]
    exclude = ["vector"]  # bytes; read them through training.selectors.embedding_matrix


# The project page gains training's action: registered here so that labeling's admin needs
# nothing of training.
admin.site.unregister(Project)


@admin.register(Project)
class ProjectAdmin(LabelingProjectAdmin):
    actions = ["retrain_now"]

    @admin.action(description="Retrain now")
    def retrain_now(self, request, queryset):
        for project in queryset:
            try:
                run = training_run_start(project=project, requested_by=request.user)
                self.message_user(request, f"{project}: training run {run.pk} queued.")
            except Conflict as exc:
                self.message_user(request, f"{project}: {exc.detail}", level="warning")
