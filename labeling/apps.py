from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self):
        from .privacy.services import blur_on_import
        from .signals import images_imported

        # images of a blurring project are blurred before anyone is served them
        images_imported.connect(blur_on_import, dispatch_uid="labeling.privacy.blur_on_import")
