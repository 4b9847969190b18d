from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self):
        from django.db.models.signals import post_save

        from .models import Annotation
        from .privacy.services import blur_on_import
        from .reports.aggregates import record_new_annotation_on_commit
        from .signals import images_imported

        # A module-level receiver: signals hold receivers by weak reference, and a function
        # defined in here would be collected once ready() returns.
        post_save.connect(record_new_annotation_on_commit, sender=Annotation,
                          dispatch_uid="labeling.reports.record")
        # images of a blurring project are blurred before anyone is served them
        images_imported.connect(blur_on_import, dispatch_uid="labeling.privacy.blur_on_import")
