"""The model side of VISION: training, pre-label and embedding runs, image embeddings, one-shot examples,
near-duplicates and assist requests (model versions and predictions are in core).

Data and constraints only; writes go through services.py.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import ACTIVE_JOB_STATUSES, Backend, Image, Job, JobStatus, LabelClass, ModelVersion, Project

# Backends whose pre-labels come from the stored embeddings, not from reading images.
EMBEDDING_BACKENDS = (Backend.PROTOTYPE, Backend.PROPAGATION)


class TrainingTrigger(models.TextChoices):
    MANUAL = "manual", "Admin request"
    AUTO = "auto", "New labels threshold"
    COMMAND = "command", "Management command"


class TrainingRun(Job):
    task_name = "training.tasks.training_run_execute"

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="training_runs"
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
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run",
        help_text="The version this run produced.",
    )

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
        Project, on_delete=models.CASCADE, related_name="prelabel_runs"
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


class ImageEmbedding(models.Model):
    """One image's pretrained feature vector under one embedding model
    (``ml.embeddings.EMBEDDING_MODELS`` key): float32 bytes, L2-normalised.

    Keyed by the model, so a new key recomputes instead of mixing vectors. ``project``
    repeats ``image.project`` so a project's matrix is read from one index, without a join.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="embeddings")
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
        Project, on_delete=models.CASCADE, related_name="embedding_runs"
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

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    label_class = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="examples")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
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

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    duplicate_of = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
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

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
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
