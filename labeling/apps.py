from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self):
        from django.db import transaction
        from django.db.models.signals import post_save

        from .models import Annotation
        from .reports.aggregates import report_aggregates_record_safely

        def record_for_reports(sender, instance, created, raw=False, **kwargs):
            # On commit, outside the submit's transaction: reports never slow down or
            # fail a submit (see labeling/reports/aggregates.py).
            if created and not raw:
                annotation_id = instance.pk
                transaction.on_commit(lambda: report_aggregates_record_safely(annotation_id))

        post_save.connect(record_for_reports, sender=Annotation, dispatch_uid="labeling.reports.record")
