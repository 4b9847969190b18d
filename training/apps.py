from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training"

    def ready(self):
        from django.db.models.signals import post_save

        from labeling.models import Annotation
        from labeling.privacy.services import CLASS_DETECTOR_SOURCES
        from labeling.queue.selectors import PRELABEL_SOURCES
        from labeling.signals import images_imported, images_rendered, label_class_merged
        from labeling.taxonomy import CLASS_USES

        from .privacy import deployed_detector_for_blur, features_drop_after_render
        from .queue_model import fit_after_label, prelabel_on_serve
        from .services import embeddings_on_import
        from .taxonomy import class_merged_relabel, class_prediction_uses

        # new images get their embedding vectors (one run per import, joined while queued)
        images_imported.connect(embeddings_on_import, dispatch_uid="training.embeddings_on_import")
        # a class merge relabels what training keeps by class id; predictions are uses of a class
        label_class_merged.connect(class_merged_relabel, dispatch_uid="training.class_merged_relabel")
        if class_prediction_uses not in CLASS_USES:
            CLASS_USES.append(class_prediction_uses)
        # a privacy blur changed the pixels: the old vectors go and new ones are made
        images_rendered.connect(features_drop_after_render, dispatch_uid="training.features_drop_after_render")
        # the deployed detector finds the classes a project blurs (person, plate)
        if deployed_detector_for_blur not in CLASS_DETECTOR_SOURCES:
            CLASS_DETECTOR_SOURCES.append(deployed_detector_for_blur)
        # every few labels the queue model is refit and the queue re-ranked
        post_save.connect(fit_after_label, sender=Annotation, dispatch_uid="training.queue_model_fit")
        # a deployed queue head pre-labels the images it is served with
        if prelabel_on_serve not in PRELABEL_SOURCES:
            PRELABEL_SOURCES.append(prelabel_on_serve)
