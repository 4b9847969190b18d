from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self):
        from django.db.models.signals import post_save

        from labeling.models import Annotation
        from labeling.signals import annotation_rejected, annotation_submitted, label_class_merged

        from .aggregates import (
            agreement_cells_merge,
            record_new_annotation_on_commit,
            rejection_recorded,
            submitted_recorded,
        )

        # Module-level receivers: signals hold receivers by weak reference, and a function
        # defined in here would be collected once ready() returns.
        post_save.connect(record_new_annotation_on_commit, sender=Annotation, dispatch_uid="reports.record")
        annotation_submitted.connect(submitted_recorded, dispatch_uid="reports.submitted")
        annotation_rejected.connect(rejection_recorded, dispatch_uid="reports.rejection")
        label_class_merged.connect(agreement_cells_merge, dispatch_uid="reports.agreement_merge")
