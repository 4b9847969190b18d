"""The report aggregates: per-project tallies kept as annotations are written (recorded by
reports/aggregates.py, the only writer), so that a report reads a few rows instead of every
annotation. Rebuilt from the annotations by `manage.py rebuild_report_aggregates`.
"""
from django.db import models

from core.models import Project


class ReportAnnotationMark(models.Model):
    """One row per annotation already counted into the report aggregates: recording is
    idempotent because this primary key can be inserted once."""

    annotation_id = models.BigIntegerField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    image_id = models.BigIntegerField()
    author_id = models.BigIntegerField(default=0)
    first_label_by_author = models.BooleanField(
        default=False, help_text="The author's first label of this image: used for agreement."
    )

    class Meta:
        db_table = "labeling_reportannotationmark"
        indexes = [models.Index(fields=["image_id", "author_id"], name="reportmark_image_author")]


class ReportLabeledImage(models.Model):
    """The day an image first received a label; its row also serialises agreement updates
    of that image."""

    image_id = models.BigIntegerField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()

    class Meta:
        db_table = "labeling_reportlabeledimage"


class ReportDailyCounts(models.Model):
    """Work counters per project x day x annotator x pre-label model version x queue arm.

    annotator_id / model_version_id are 0 where there is none (imports; no pre-label), so
    the unique key holds without NULLs.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    annotator_id = models.BigIntegerField(default=0)
    model_version_id = models.BigIntegerField(default=0)
    arm = models.CharField(max_length=10, help_text="strategy, random, or none (no task)")

    submissions = models.PositiveIntegerField(default=0)
    labeled = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0, help_text="Labels a lead rejected in review.")
    skipped = models.PositiveIntegerField(default=0)
    flagged = models.PositiveIntegerField(default=0)
    time_spent_ms = models.BigIntegerField(default=0)
    images_labeled = models.PositiveIntegerField(default=0, help_text="Images labeled for the first time.")
    images_imported = models.PositiveIntegerField(default=0, help_text="First labels that came by import.")
    prelabeled = models.PositiveIntegerField(default=0, help_text="Labels that started from a pre-label.")
    accepted_unchanged = models.PositiveIntegerField(default=0)
    boxes_predicted = models.PositiveIntegerField(default=0)
    boxes_final = models.PositiveIntegerField(default=0)
    boxes_added = models.PositiveIntegerField(default=0)
    boxes_deleted = models.PositiveIntegerField(default=0)
    boxes_moved = models.PositiveIntegerField(default=0)
    boxes_matched = models.PositiveIntegerField(default=0)
    iou_shift_sum = models.FloatField(default=0.0)
    class_flips = models.PositiveIntegerField(default=0)
    vertex_shift_sum = models.FloatField(default=0.0, help_text="Segmentation: pixels, over matched polygons.")
    vertices_compared = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "labeling_reportdailycounts"
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day", "annotator_id", "model_version_id", "arm"],
                name="reportdaily_unique_key",
            )
        ]


class ReportAgreementPair(models.Model):
    """Agreement between two annotators (annotator_a < annotator_b) on shared images.

    Detection: label_a = label_b = 0 and score_sum adds box F1 per image.
    Classification: one row per (label_a, label_b) cell; score_sum counts agreements.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    annotator_a = models.BigIntegerField()
    annotator_b = models.BigIntegerField()
    label_a = models.BigIntegerField(default=0)
    label_b = models.BigIntegerField(default=0)
    comparisons = models.PositiveIntegerField(default=0)
    score_sum = models.FloatField(default=0.0)

    class Meta:
        db_table = "labeling_reportagreementpair"
        constraints = [
            models.UniqueConstraint(
                fields=["project", "annotator_a", "annotator_b", "label_a", "label_b"],
                name="reportagreement_unique_key",
            )
        ]


class ReportFlagReason(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=500)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "labeling_reportflagreason"
        constraints = [
            models.UniqueConstraint(fields=["project", "reason"], name="reportflag_unique_reason")
        ]
