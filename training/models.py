"""The model side of VISION: model versions, training runs, predictions.

Data and constraints only; writes go through services.py.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.models import ACTIVE_JOB_STATUSES, Job, JobStatus


class Backend(models.TextChoices):
    YOLO = "yolo", "YOLOv8 detector"
    YOLO_SEG = "yolo_seg", "YOLOv8 instance segmentation"
    CLASSIFIER = "classifier", "PyTorch classifier"
    LINEAR = "linear", "Queue model: linear head on image embeddings"
    PROTOTYPE = "prototype", "One-shot proposals: nearest class prototype of the examples"
    PROPAGATION = "propagation", "One-shot proposals: label spreading from the examples"


# Backends whose pre-labels come from the stored embeddings, not from reading images.
EMBEDDING_BACKENDS = (Backend.PROTOTYPE, Backend.PROPAGATION)


class VersionStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate (evaluated, not decided)"
    DEPLOYED = "deployed", "Deployed"
    REJECTED = "rejected", "Rejected by the promotion gate"
    RETIRED = "retired", "Previously deployed"
    QUEUE = "queue", "Ranks the queue only (an image-level head cannot draw boxes)"


def weights_upload_to(instance: "ModelVersion", filename: str) -> str:
    return f"projects/{instance.project_id}/models/v{instance.number}/{filename}"


class ModelVersion(models.Model):
    """A trained model. `is_deployed` is changed only by the deploy service, in one
    transaction; the partial unique constraint guarantees one deployed version a project."""

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="model_versions"
    )
    number = models.PositiveIntegerField()
    backend = models.CharField(max_length=20, choices=Backend.choices)
    architecture = models.CharField(max_length=100, blank=True)
    weights = models.FileField(upload_to=weights_upload_to, max_length=500, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    training_run = models.OneToOneField(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version"
    )
    class_ids = models.JSONField(default=list, help_text="LabelClass ids in model output order.")
    dataset_size = models.PositiveIntegerField(default=0)
    validation_size = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    primary_metric = models.FloatField(null=True, blank=True)
    comparison = models.JSONField(
        default=dict, blank=True, help_text="The promotion gate's decision and its numbers."
    )
    status = models.CharField(
        max_length=10, choices=VersionStatus.choices, default=VersionStatus.CANDIDATE
    )
    is_deployed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    deployed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="modelversion_unique_number"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_deployed=True), name="modelversion_one_deployed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} v{self.number}"


class TrainingTrigger(models.TextChoices):
    MANUAL = "manual", "Admin request"
    AUTO = "auto", "New labels threshold"
    COMMAND = "command", "Management command"


class TrainingRun(Job):
    task_name = "training.tasks.training_run_execute"

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="training_runs"
    )
    trigger = models.CharField(
        max_length=10, choices=TrainingTrigger.choices, default=TrainingTrigger.MANUAL
    )
    params = models.JSONField(default=dict, blank=True)
    epoch = models.PositiveIntegerField(default=0)
    total_epochs = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    live_metric = models.FloatField(null=True, blank=True)
    history = models.JSONField(
        default=list, blank=True,
        help_text='Per-epoch progress as reported: [{"epoch", "loss", "metric"}, ...].',
    )
    labels_at_start = models.PositiveIntegerField(
        default=0, help_text="Verified labels in the project when the run was requested."
    )
    celery_task_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One active run per project, enforced by the database so two racing
            # requests cannot both start one.
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=ACTIVE_JOB_STATUSES),
                name="trainingrun_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"


class PrelabelRun(Job):
    task_name = "training.tasks.prelabel_execute"

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="prelabel_runs"
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="prelabel_runs"
    )
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version"],
                condition=Q(status__in=ACTIVE_JOB_STATUSES),
                name="prelabelrun_one_active",
            ),
        ]


class Prediction(models.Model):
    """One model version's prediction for one image; keyed by version, so re-running
    prelabel skips images that already have one.

    Payload schema:
      detection:       {"boxes": [{"x1", "y1", "x2", "y2", "label", "score",
                                   "probs": [per class, model order]}]}
      classification:  {"labels": [top class id], "probs": [per class, model order]}
      segmentation:    {"polygons": [{"label", "points" or "rings", "score",
                                      "probs": [per class, model order]}]}
    Class ids in model order are `model_version.class_ids`.
    """

    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="predictions"
    )
    payload = models.JSONField(default=dict)
    uncertainty = models.FloatField(default=0.0)
    embedding = models.BinaryField(
        null=True, blank=True, help_text="float32 vector, for diversity sampling."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image", "model_version"], name="prediction_unique_image_version"
            )
        ]
        indexes = [models.Index(fields=["model_version", "-uncertainty"], name="prediction_version_unc")]

    def __str__(self) -> str:
        return f"prediction {self.pk}"


class ImageEmbedding(models.Model):
    """One image's pretrained feature vector under one embedding model
    (``ml.embeddings.EMBEDDING_MODELS`` key): float32 bytes, L2-normalised.

    Keyed by the model, so a new key recomputes instead of mixing vectors. ``project``
    repeats ``image.project`` so a project's matrix is read from one index, without a join.
    """

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="embeddings")
    model_key = models.CharField(max_length=100)
    vector = models.BinaryField(help_text="float32 values, little-endian (numpy dtype '<f4').")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_key"], name="imageembedding_unique_image_key"),
        ]
        indexes = [
            models.Index(fields=["project", "model_key", "image"], name="imageembedding_project_key"),
        ]

    def __str__(self) -> str:
        return f"embedding of image {self.image_id} ({self.model_key})"


class EmbeddingRun(Job):
    """Embeds a project's images that have no vector under ``model_key`` yet (all of them, or
    those of ``image_ids``). At most one queued run per project: a request while one waits
    joins it; a request while one runs queues one follow-up, for the images it did not see."""

    task_name = "training.tasks.embed_images"

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="embedding_runs"
    )
    model_key = models.CharField(max_length=100)
    image_ids = models.JSONField(
        null=True, blank=True, help_text="Only these images; null: every image without a vector."
    )
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status=JobStatus.QUEUED),
                name="embeddingrun_one_queued",
            ),
        ]

    def __str__(self) -> str:
        return f"embedding run {self.pk} ({self.status})"


class ClassExample(models.Model):
    """An image a lead picked as an example of a class, for one-shot proposals. An example is
    not a label: it never counts as verified work."""

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    label_class = models.ForeignKey("labeling.LabelClass", on_delete=models.CASCADE, related_name="examples")
    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="+")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label_class", "id"]
        constraints = [
            models.UniqueConstraint(fields=["label_class", "image"], name="classexample_unique_class_image"),
        ]

    def __str__(self) -> str:
        return f"image {self.image_id} as an example of class {self.label_class_id}"


class NearDuplicate(models.Model):
    """A newly embedded image whose nearest older image is at least the project's
    near-duplicate threshold in cosine: likely the same photo, shown to leads."""

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="+")
    duplicate_of = models.ForeignKey("labeling.Image", on_delete=models.CASCADE, related_name="+")
    similarity = models.FloatField()
    dismissed = models.BooleanField(default=False, help_text="A lead decided these are different images.")
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "duplicate_of"], name="nearduplicate_unique_pair"),
        ]
        indexes = [models.Index(fields=["project", "dismissed", "-id"], name="nearduplicate_project")]

    def __str__(self) -> str:
        return f"image {self.image_id} near image {self.duplicate_of_id} ({self.similarity:.3f})"


class AssistStatus(models.TextChoices):
    OK = "ok", "Answered"
    TIMEOUT = "timeout", "Timed out"
    HTTP_ERROR = "http_error", "HTTP error"
    UNREACHABLE = "unreachable", "Could not connect"
    MALFORMED = "malformed", "Malformed reply"


class AssistRequest(models.Model):
    """One call to the vision-language endpoint: when, who, where, how it went."""

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    endpoint = models.CharField(max_length=500)
    model_name = models.CharField(max_length=200, blank=True)
    purpose = models.CharField(max_length=20)
    status = models.CharField(max_length=12, choices=AssistStatus.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    images = models.PositiveSmallIntegerField(default=0)
    request_bytes = models.PositiveIntegerField(default=0)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="assistrequest_project_time")]

    def __str__(self) -> str:
        return f"assist {self.purpose} {self.status}"
