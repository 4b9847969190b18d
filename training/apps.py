from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training"

    def ready(self):
        from labeling.signals import images_imported

        from .services import embeddings_on_import

        # new images get their embedding vectors (one run per import, joined while queued)
        images_imported.connect(embeddings_on_import, dispatch_uid="training.embeddings_on_import")
