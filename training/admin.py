from django.contrib import admin

from .models import ModelVersion, Prediction, PrelabelRun, TrainingRun


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "number", "backend", "status", "is_deployed", "primary_metric", "created_at"]
    list_filter = ["project", "status"]
    readonly_fields = ["is_deployed"]  # changed only by the deploy operation


@admin.register(TrainingRun, PrelabelRun)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status"]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "model_version", "uncertainty", "created_at"]
    raw_id_fields = ["image"]
