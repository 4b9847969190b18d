"""The model side of the class tree: what training keeps by class id follows a merge, and
predictions count as uses of a class (labeling/taxonomy.py asks through its signal and hook,
so labeling imports nothing of training for it)."""
from __future__ import annotations

from core.models import ModelVersion, Prediction
from labeling.taxonomy import relabel_rows, with_any_label

from .models import ClassExample


def class_merged_relabel(sender, *, project, source_id: int, target_id: int, **kwargs) -> dict:
    """Receiver of labeling.signals.label_class_merged (inside the merge's transaction):
    predictions and model versions' class lists name the target; the source's one-shot
    examples become the target's (an image picked for both stays once)."""
    mapping = {source_id: target_id}
    prediction_ids = relabel_rows(Prediction.objects.filter(model_version__project=project), mapping)
    versions = []
    for version in ModelVersion.objects.select_for_update().filter(project=project).only("id", "class_ids"):
        if source_id in (version.class_ids or []):
            # Model output order stays; the source's output now reads as the target.
            version.class_ids = [target_id if c == source_id else c for c in version.class_ids]
            version.save(update_fields=["class_ids"])
            versions.append(version.pk)
    ClassExample.objects.filter(label_class_id=source_id).exclude(
        image_id__in=ClassExample.objects.filter(label_class_id=target_id).values("image_id")
    ).update(label_class_id=target_id)
    return {"predictions": len(prediction_ids), "model_versions": versions}


def class_prediction_uses(project, class_id: int) -> dict[str, int]:
    """A class's uses in predictions, for the delete check (labeling.taxonomy.CLASS_USES)."""
    return {"prediction(s)": with_any_label(Prediction.objects.filter(model_version__project=project),
                                            [class_id]).count()}
