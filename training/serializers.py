from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers

from core.models import ModelVersion
from ml.embedding_specs import EMBEDDING_MODELS

from .models import EmbeddingRun, PrelabelRun, TrainingRun

JOB_FIELDS = ["id", "project", "status", "progress", "message", "error", "cancel_requested",
              "created_at", "started_at", "finished_at", "heartbeat_at"]


class TrainingRunOutputSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()
    model_version_number = serializers.SerializerMethodField()
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = TrainingRun
        fields = [*JOB_FIELDS, "trigger", "params", "epoch", "total_epochs", "loss", "live_metric",
                  "labels_at_start", "requested_by", "model_version", "model_version_number"]

    def get_model_version(self, run) -> int | None:
        return run.model_version_id

    def get_model_version_number(self, run) -> int | None:
        return run.model_version.number if run.model_version_id else None


class TrainingRunInputSerializer(serializers.Serializer):
    epochs = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    image_size = serializers.IntegerField(min_value=32, max_value=4096, required=False)


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    training_run = serializers.SerializerMethodField(help_text="The training run that produced this version.")
    parent_number = serializers.IntegerField(source="parent.number", default=None, read_only=True, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = ["id", "project", "number", "backend", "architecture", "status", "is_deployed", "metrics",
                  "primary_metric", "comparison", "dataset_size", "validation_size", "class_ids",
                  "parent", "parent_number", "training_run", "created_at", "deployed_at"]

    def get_training_run(self, version) -> int | None:
        try:
            return version.training_run.pk
        except ObjectDoesNotExist:  # queue-model and one-shot versions come from no run
            return None


class PrelabelRunOutputSerializer(serializers.ModelSerializer):
    model_version_number = serializers.IntegerField(source="model_version.number", read_only=True)

    class Meta:
        model = PrelabelRun
        fields = [*JOB_FIELDS, "model_version", "model_version_number", "total", "processed", "stats"]


class EmbeddingRunOutputSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True, allow_null=True)

    class Meta:
        model = EmbeddingRun
        fields = [*JOB_FIELDS, "model_key", "total", "processed", "stats", "requested_by"]


class EmbeddingRunInputSerializer(serializers.Serializer):
    image_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False,
                                      max_length=100_000, help_text="only these images (default: all without a vector)")
    model_key = serializers.ChoiceField(choices=sorted(EMBEDDING_MODELS), required=False)
