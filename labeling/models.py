"""The human side of VISION: memberships, the taxonomy's history, the queue, annotations,
import and export jobs, privacy blurring and the report aggregates (projects, classes and
images are in core).

Data and constraints only; writes go through services.py.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import Image, Job, Prediction, Project


class LabelClassAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Renamed, moved or restyled"
    MERGE = "merge", "Merged into another class"
    DELETE = "delete", "Deleted"


class LabelClassEvent(models.Model):
    """The taxonomy's history, append-only: who changed which class how. A merge records
    the annotations it relabeled (their ids) and the predictions and model versions it
    mapped, so a relabel in place stays auditable. Class ids are plain numbers: the row
    outlives the class."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_class_events")
    class_id = models.BigIntegerField()
    class_name = models.CharField(max_length=100)
    action = models.CharField(max_length=10, choices=LabelClassAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="labelclassevent_project")]

    def __str__(self) -> str:
        return f"{self.action} {self.class_name}"


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    LEAD = "lead", "Lead"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.ANNOTATOR: 1, Role.LEAD: 2, Role.ADMIN: 3}


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"  # in the pool; leased while lease_expires_at is in the future
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    FLAGGED = "flagged", "Flagged unclear"
    HELD = "held", "Held until privacy blurring is done"  # never served; the blur job opens it


class Task(models.Model):
    """One unit of queue work: one image to be annotated once. With overlap N an image has
    N task rows; an annotator never receives two tasks of the same image.

    A task is claimable when it is OPEN and its lease is missing or expired; the queue
    index orders open tasks by priority so the claim is an index scan (see selectors).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="tasks")
    slot = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    priority = models.FloatField(default=0.0)
    is_random_pick = models.BooleanField(
        default=False, help_text="Served by the random control arm rather than by the strategy."
    )
    lease_holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "slot"], name="task_unique_image_slot"),
        ]
        indexes = [
            # Matches the claim's ORDER BY; partial so done work does not bloat it.
            models.Index(
                "project",
                models.F("priority").desc(),
                "id",
                condition=Q(status="open"),
                name="task_queue_order",
            ),
            # A caller's own live leases (read with every claim) and the stats' lease
            # count, without scanning the open pool.
            models.Index(
                fields=["lease_holder", "project", "lease_expires_at"],
                condition=Q(status="open", lease_expires_at__isnull=False),
                name="task_open_leases_by_holder",
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.status})"


class AnnotationKind(models.TextChoices):
    ACCEPT = "accept", "Accepted pre-labels"
    CORRECT = "correct", "Corrected"
    SKIP = "skip", "Skipped"
    FLAG = "flag", "Flagged unclear"


class AnnotationSource(models.TextChoices):
    HUMAN = "human", "Human"
    IMPORT = "import", "Import"


class AnnotationState(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    EXTRA_OPINION = "extra_opinion", "Extra opinion (late submit)"


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Not reviewed"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class Annotation(models.Model):
    """Append-only: a correction is a new row, never an edit of an old one.

    Payload schema (validated on every write, see labeling/payloads.py):
      detection:       {"boxes": [{"x1", "y1", "x2", "y2": pixels, "label": class id}]}
      classification:  {"labels": [class id, ...]}
      segmentation:    {"polygons": [{"label": class id, "points": [[x, y], ...]}
                                     or {"label": class id, "rings": [[[x, y], ...], ...]}]}
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="annotations")
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    kind = models.CharField(max_length=10, choices=AnnotationKind.choices)
    source = models.CharField(
        max_length=10, choices=AnnotationSource.choices, default=AnnotationSource.HUMAN
    )
    state = models.CharField(
        max_length=16, choices=AnnotationState.choices, default=AnnotationState.SUBMITTED
    )
    payload = models.JSONField(default=dict, blank=True)
    prediction = models.ForeignKey(
        Prediction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    flag_reason = models.CharField(max_length=500, blank=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    review_status = models.CharField(
        max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_comment = models.TextField(blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["author", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="annotation_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["image", "-created_at"], name="annotation_image_latest"),
            models.Index(fields=["project", "created_at"], name="annotation_project_time"),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} ({self.kind})"


class ImportJob(Job):
    task_name = "labeling.tasks.import_execute"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    source_path = models.CharField(max_length=1000, help_text="Staged upload or server folder.")
    label_format = models.CharField(max_length=20, blank=True)
    label_path = models.CharField(max_length=1000, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]


class ExportJob(Job):
    task_name = "labeling.tasks.export_execute"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    format = models.CharField(max_length=20)
    result_file = models.FileField(upload_to="exports/", max_length=500, blank=True)
    originals = models.BooleanField(
        default=False, help_text="An admin's export of the kept originals of blurred images, not their renders."
    )

    class Meta:
        ordering = ["-id"]


# --- privacy blurring (written only by labeling/privacy/services.py) ------------------


class BlurMethod(models.TextChoices):
    GAUSSIAN = "gaussian", "Gaussian blur"
    PIXELATE = "pixelate", "Pixelate"


class FaceDetectorChoice(models.TextChoices):
    MTCNN = "mtcnn", "MTCNN (facenet-pytorch)"
    HAAR = "haar", "Haar cascade (OpenCV 4.x)"


class OriginalPolicy(models.TextChoices):
    KEEP = "keep", "Keep the original, for admins only"
    DELETE = "delete", "Delete the original after blurring"


class PrivacySettings(models.Model):
    """What a project blurs before anyone labels its images. Off until an admin turns it on;
    then faces are blurred by default, and any classes of the deployed detector named here."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="privacy")
    enabled = models.BooleanField(default=False)
    blur_faces = models.BooleanField(default=True)
    face_detector = models.CharField(max_length=10, choices=FaceDetectorChoice.choices,
                                     default=FaceDetectorChoice.MTCNN)
    face_min_score = models.FloatField(default=0.9, help_text="MTCNN's least face probability (0-1).")
    detector_classes = models.JSONField(
        default=list, blank=True, help_text="Class names of the deployed detector to blur (e.g. person, plate)."
    )
    detector_min_score = models.FloatField(default=0.25, help_text="Least detector score blurred (0-1).")
    method = models.CharField(max_length=10, choices=BlurMethod.choices, default=BlurMethod.GAUSSIAN)
    strength = models.PositiveSmallIntegerField(default=60, help_text="1-100, relative to each region's size.")
    padding = models.FloatField(default=0.15, help_text="Grow each box by this share of its size per side (0-1).")
    original_policy = models.CharField(max_length=10, choices=OriginalPolicy.choices, default=OriginalPolicy.KEEP)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(strength__gte=1) & Q(strength__lte=100), name="privacy_strength_1_100"),
            models.CheckConstraint(condition=Q(padding__gte=0) & Q(padding__lte=1), name="privacy_padding_0_1"),
            models.CheckConstraint(condition=Q(face_min_score__gte=0) & Q(face_min_score__lte=1),
                                   name="privacy_face_score_0_1"),
            models.CheckConstraint(condition=Q(detector_min_score__gte=0) & Q(detector_min_score__lte=1),
                                   name="privacy_detector_score_0_1"),
        ]


class BlurState(models.TextChoices):
    PENDING = "pending", "Waiting for blurring"  # its file is the original: never served
    BLURRED = "blurred", "Blurred"


class ImageBlur(models.Model):
    """An image of a blurring project. While PENDING, Image.file is the sharp original and
    nobody is served it; once BLURRED, Image.file (and its display copy) is the render, and the
    original, when kept, lies under a random path in `original` that only the admins'
    original endpoint reads. `applied_region_ids`: the regions burnt into the render, which
    matters only once the original is gone (nothing can be re-rendered from it then)."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, primary_key=True, related_name="blur")
    state = models.CharField(max_length=10, choices=BlurState.choices, default=BlurState.PENDING)
    original = models.FileField(max_length=500, blank=True)
    original_deleted = models.BooleanField(default=False)
    detected = models.BooleanField(default=False, help_text="Detection ran on the original.")
    renders = models.PositiveIntegerField(default=0)
    applied_region_ids = models.JSONField(default=list, blank=True)
    rendered_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["state"], name="imageblur_state",
                                condition=Q(state="pending"))]


class BlurSource(models.TextChoices):
    FACE = "face", "Face detector"
    DETECTOR = "detector", "Project's detector"
    MANUAL = "manual", "Drawn by an admin"


class BlurRegion(models.Model):
    """One box blurred on an image (pixels of the stored image, before padding). A removed
    region stays as a row, so a re-detection does not bring a false hit back."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="blur_regions")
    x1 = models.FloatField()
    y1 = models.FloatField()
    x2 = models.FloatField()
    y2 = models.FloatField()
    source = models.CharField(max_length=10, choices=BlurSource.choices)
    label = models.CharField(max_length=100, blank=True, help_text="face, or the detector's class name")
    score = models.FloatField(null=True, blank=True)
    removed = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(x2__gt=models.F("x1")) & Q(y2__gt=models.F("y1")),
                                   name="blurregion_positive_size"),
        ]


class OriginalAccess(models.Model):
    """Who opened which unblurred original, when. Kept when the image or the user goes."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey(Image, null=True, on_delete=models.SET_NULL, related_name="+")
    image_name = models.CharField(max_length=500)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    accessed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-accessed_at", "-id"]
        indexes = [models.Index(fields=["project", "-accessed_at"], name="originalaccess_project_time")]


class BlurRun(Job):
    """Detect and render the blur of a project's images: those of `image_ids`, or all."""

    task_name = "labeling.tasks.blur_run_execute"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="blur_runs")
    image_ids = models.JSONField(null=True, blank=True)
    redetect = models.BooleanField(default=False, help_text="Detect again on kept originals.")
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
