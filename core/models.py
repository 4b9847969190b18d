"""The rows every stage of the loop shares: projects, their classes and images, the model
versions that pre-label them and those pre-labels (predictions), and the base of every long
job's row. labeling (the queue, annotations) and training (runs, embeddings) sit above.

Data and constraints only; writes go through the apps' services.
"""
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q


class TaskType(models.TextChoices):
    CLASSIFICATION = "classification", "Image classification"
    DETECTION = "detection", "Object detection"
    SEGMENTATION = "segmentation", "Instance segmentation"


class SamplingStrategy(models.TextChoices):
    LEAST_CONFIDENCE = "least_confidence", "Least confidence"
    MARGIN = "margin", "Smallest margin"
    ENTROPY = "entropy", "Entropy"
    DIVERSITY = "diversity", "Diversity (k-center greedy)"
    HYBRID = "hybrid", "Uncertain pool, then diverse batch"
    RANDOM = "random", "Random"
    AUTO = "auto", "Auto: the arm that leads on this project's labels"


class DetectionAggregation(models.TextChoices):
    MAX = "max", "Max over boxes"
    MEAN = "mean", "Mean over boxes"
    SUM = "sum", "Sum over boxes"


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    task_type = models.CharField(max_length=20, choices=TaskType.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Queue settings.
    sampling_strategy = models.CharField(
        max_length=20, choices=SamplingStrategy.choices, default=SamplingStrategy.MARGIN
    )
    detection_aggregation = models.CharField(
        max_length=10, choices=DetectionAggregation.choices, default=DetectionAggregation.MAX
    )
    random_share = models.FloatField(
        default=0.1, help_text="Share of the queue served at random, as a control arm (0-1)."
    )
    queue_model_every = models.PositiveIntegerField(
        default=10, help_text="Refit the queue model (a linear head on image embeddings) and re-rank the "
        "queue after this many new labels; 0 turns it off."
    )
    lease_ttl_seconds = models.PositiveIntegerField(default=600)
    annotations_per_image = models.PositiveSmallIntegerField(
        default=1, help_text="Independent annotations wanted per image (overlap)."
    )
    validation_share = models.FloatField(
        default=0.2, help_text="Random share of labeled images held out for validation (0-1)."
    )

    # Retraining settings.
    retrain_every_n_labels = models.PositiveIntegerField(
        default=0, help_text="Start a training run after this many new labels; 0 turns it off."
    )
    promotion_tolerance = models.FloatField(
        default=0.0, help_text="Deploy a new version that trails the deployed one by at most this."
    )
    min_map50 = models.FloatField(
        default=0.05, help_text="Detection floor: a detector below this mAP50 on the validation split is "
        "never deployed."
    )
    train_epochs = models.PositiveIntegerField(default=30)
    train_image_size = models.PositiveIntegerField(default=640)
    train_batch_size = models.PositiveIntegerField(default=16)
    start_weights = models.CharField(
        max_length=500,
        blank=True,
        help_text="File name under the trusted weights folder to start from; blank: the "
        "deployed version, else a random init from the model config.",
    )
    target_metric = models.FloatField(
        null=True, blank=True, help_text="Primary metric value the lead aims for (forecast)."
    )
    near_duplicate_threshold = models.FloatField(
        default=0.97, help_text="Flag a new image whose nearest older image is at least this similar "
        "(cosine of the embeddings, 0-1); 1 turns flagging off."
    )

    class Meta:
        db_table = "labeling_project"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(random_share__gte=0) & Q(random_share__lte=1), name="project_random_share_0_1"
            ),
            models.CheckConstraint(
                condition=Q(validation_share__gte=0) & Q(validation_share__lt=1),
                name="project_validation_share_0_1",
            ),
            models.CheckConstraint(
                condition=Q(annotations_per_image__gte=1), name="project_overlap_at_least_1"
            ),
            models.CheckConstraint(
                condition=Q(min_map50__gte=0) & Q(min_map50__lte=1), name="project_min_map50_0_1"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class LabelClass(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_classes")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#e6194b")
    hotkey = models.CharField(max_length=1, blank=True)
    # A class may sit under another ("oak" under "tree"); a label of it counts for every
    # ancestor (labeling/taxonomy.py). RESTRICT: a class with children is deleted only by
    # the taxonomy service, which lifts them first; a project's deletion still cascades.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.RESTRICT, related_name="children"
    )
    order = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "labeling_labelclass"
        ordering = ["project", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="labelclass_unique_name"),
            models.UniqueConstraint(
                fields=["project", "hotkey"], condition=~Q(hotkey=""), name="labelclass_unique_hotkey"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Split(models.TextChoices):
    """Drawn at random on arrival (see ingest.split_for_new_image); UNASSIGNED is left
    for images a lead takes out of both (e.g. decided unclear)."""

    UNASSIGNED = "unassigned", "Unassigned"
    TRAIN = "train", "Train"
    VALIDATION = "validation", "Validation"


def image_upload_to(instance: "Image", filename: str) -> str:
    return f"projects/{instance.project_id}/images/{instance.sha256[:2]}/{instance.sha256}{_suffix(filename)}"


def display_upload_to(instance: "Image", filename: str) -> str:
    return f"projects/{instance.project_id}/display/{instance.sha256[:2]}/{instance.sha256}.jpg"


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot != -1 else ""


class Image(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=image_upload_to, max_length=500)
    display_file = models.FileField(upload_to=display_upload_to, max_length=500, blank=True)
    original_name = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    split = models.CharField(max_length=12, choices=Split.choices, default=Split.UNASSIGNED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "labeling_image"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_unique_sha256"),
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="image_positive_size"),
        ]
        indexes = [models.Index(fields=["project", "split"], name="image_project_split")]

    def __str__(self) -> str:
        return self.original_name


class Backend(models.TextChoices):
    YOLO = "yolo", "YOLOv8 detector"
    YOLO_SEG = "yolo_seg", "YOLOv8 instance segmentation"
    CLASSIFIER = "classifier", "PyTorch classifier"
    LINEAR = "linear", "Queue model: linear head on image embeddings"
    PROTOTYPE = "prototype", "One-shot proposals: nearest class prototype of the examples"
    PROPAGATION = "propagation", "One-shot proposals: label spreading from the examples"


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
        Project, on_delete=models.CASCADE, related_name="model_versions"
    )
    number = models.PositiveIntegerField()
    backend = models.CharField(max_length=20, choices=Backend.choices)
    architecture = models.CharField(max_length=100, blank=True)
    weights = models.FileField(upload_to=weights_upload_to, max_length=500, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
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
        db_table = "training_modelversion"
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="modelversion_unique_number"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_deployed=True), name="modelversion_one_deployed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} v{self.number}"


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

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="predictions")
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
        db_table = "training_prediction"
        constraints = [
            models.UniqueConstraint(
                fields=["image", "model_version"], name="prediction_unique_image_version"
            )
        ]
        indexes = [models.Index(fields=["model_version", "-uncertainty"], name="prediction_version_unc")]

    def __str__(self) -> str:
        return f"prediction {self.pk}"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(models.Model):
    """What every long job row carries. Workers claim a row with a conditional update
    (QUEUED -> RUNNING) and write terminal states conditionally (only from RUNNING), so a
    late write cannot clobber a failure recorded meanwhile."""

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0-1")
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When the broker took the job's task message; empty while it has not."
    )

    # The Celery task (by name) that runs a job of this kind, sent with the row's id.
    task_name: ClassVar[str]

    class Meta:
        abstract = True
