"""One-shot proposals in the database: a lead's example images per class, and the model
version that proposes a class for every unlabeled image from them.

The numbers are Django-free (ml/oneshot.py). A proposal is a model version of its
own backend (``prototype`` or ``propagation``) whose weights are the examples' vectors (an
``.npz``, never a pickle). Deploying it starts the ordinary prelabel run, which writes one
Prediction per pool image with the full class probabilities from the stored embeddings
(training/prelabel.py), so the queue ranks by its uncertainty, the editor shows it as the
pre-label and the accuracy report lists it beside trained versions. A proposal is never a
label: only a person's submit turns one into an annotation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max

from core.models import Image, LabelClass, ModelVersion, Prediction, Project, Split, TaskType, VersionStatus
from labeling.models import Task, TaskStatus
from labeling.queue.selectors import image_urls
from ml.oneshot import MAX_EXAMPLES_PER_CLASS, METHODS, NotEnoughExamples, proposal_model_fit
from ml.queue_model import macro_f1, majority_class_f1

from . import selectors
from .models import EMBEDDING_BACKENDS, ClassExample, PrelabelRun
from .queue_heads import MIN_VALIDATION_LABELS, labeled_examples

# --- examples -----------------------------------------------------------------------------


@transaction.atomic
def class_examples_set(*, label_class: LabelClass, image_ids: list[int], user) -> list[ClassExample]:
    """Replace the class's examples with ``image_ids`` (0 to MAX_EXAMPLES_PER_CLASS images of
    its project, in the given order; an empty list clears them)."""
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    if len(ids) > MAX_EXAMPLES_PER_CLASS:
        raise ValidationError(f"A class takes at most {MAX_EXAMPLES_PER_CLASS} examples; got {len(ids)}.")
    found = set(Image.objects.filter(project_id=label_class.project_id, pk__in=ids).values_list("id", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationError(f"Images {missing} are not images of project {label_class.project_id}.")
    elsewhere = dict(ClassExample.objects.filter(project_id=label_class.project_id, image_id__in=ids)
                     .exclude(label_class=label_class).values_list("image_id", "label_class__name"))
    if elsewhere:
        taken = ", ".join(f"{image_id} of {name!r}" for image_id, name in sorted(elsewhere.items()))
        raise ValidationError(f"An image is an example of one class only; already examples: {taken}.")
    ClassExample.objects.filter(label_class=label_class).delete()
    return ClassExample.objects.bulk_create(
        ClassExample(project_id=label_class.project_id, label_class=label_class, image_id=i, added_by=user)
        for i in ids
    )


def class_examples_list(project: Project, label_class: LabelClass | None = None) -> list[dict]:
    """Each class (or the one given) with its examples, and whether each is embedded yet."""
    classes = [label_class] if label_class is not None else list(project.label_classes.order_by("order", "id"))
    rows = ClassExample.objects.filter(label_class__in=classes).select_related("image").order_by("id")
    embedded = set(selectors.embedding_matrix(
        project=project, image_ids=[r.image_id for r in rows])[0].tolist())
    by_class: dict[int, list[dict]] = {c.pk: [] for c in classes}
    for row in rows:
        by_class[row.label_class_id].append(
            {"image_id": row.image_id, **image_urls(row.image), "embedded": row.image_id in embedded})
    return [{"label_class": c.pk, "name": c.name, "examples": by_class[c.pk]} for c in classes]


# --- proposals ----------------------------------------------------------------------------


@dataclass
class ProposalOutcome:
    version: ModelVersion
    prelabel_run: PrelabelRun | None


def proposals_create(*, project: Project, method: str, requested_by=None) -> ProposalOutcome:
    """Fit a proposal model on the examples, register it as a model version, measure it on
    the validation labels when there are enough, and deploy it unless it fails the floor
    (beat the majority class); deploying starts the prelabel run that writes the proposals.

    Raises ValidationError when the project is not a classification project, fewer than two
    classes have examples, an example has no embedding yet, or propagation is asked of a
    pool larger than VISION_PROPAGATION_MAX_IMAGES."""
    from .services import model_version_deploy

    if project.task_type != TaskType.CLASSIFICATION:
        raise ValidationError("One-shot proposals are for classification projects.")
    if method not in METHODS:
        raise ValidationError(f"Unknown method {method!r}; one of {', '.join(METHODS)}.")
    examples = list(ClassExample.objects.filter(project=project).values_list("image_id", "label_class_id"))
    ids, vectors = selectors.embedding_matrix(project=project, image_ids=[i for i, _ in examples])
    missing = sorted({i for i, _ in examples} - set(ids.tolist()))
    if missing:
        raise ValidationError(f"Example images {missing} have no embedding yet; wait for the embedding run.")
    class_of = dict(examples)
    if method == "propagation":
        pool = Task.objects.filter(project=project, status=TaskStatus.OPEN).values("image_id").distinct().count()
        if pool > settings.VISION_PROPAGATION_MAX_IMAGES:
            raise ValidationError(f"Propagation builds a graph over the whole pool; {pool} images is more than "
                                  f"{settings.VISION_PROPAGATION_MAX_IMAGES}. Use the prototype method.")
    try:
        model = proposal_model_fit(
            method=method, vectors=vectors, example_classes=[class_of[int(i)] for i in ids.tolist()],  # type: ignore[arg-type]
            classes=list(project.label_classes.values_list("id", flat=True)))
    except NotEnoughExamples as exc:
        raise ValidationError(f"{exc}.") from None
    metrics, comparison = _evaluate(project, model)
    version = _register(project, model, metrics, comparison)
    if comparison["decision"] != "deploy":
        return ProposalOutcome(version, None)
    model_version_deploy(version=version, requested_by=requested_by)
    return ProposalOutcome(version, selectors.prelabel_run_active(version))


def _evaluate(project: Project, model) -> tuple[dict, dict]:
    """The proposals' macro-F1 on the validation labels that have embeddings, and the floor.
    Below MIN_VALIDATION_LABELS the number is noise: the version is deployed on the lead's
    request with the floor marked unmeasured (a person verifies every proposal anyway)."""
    labeled = labeled_examples(project)
    val, train = labeled.splits == Split.VALIDATION, labeled.splits == Split.TRAIN
    n_val = int(val.sum())
    counts: dict[int, int] = {}
    for label in model.labels.tolist():
        counts[model.classes[label]] = counts.get(model.classes[label], 0) + 1
    metrics: dict = {"method": model.method, "examples": int(len(model.labels)),
                     "examples_per_class": {str(k): v for k, v in counts.items()},
                     "primary_metric": "macro_f1", "primary": None, "num_images": n_val}
    base = {"primary_metric": "macro_f1", "tolerance": project.promotion_tolerance}
    if n_val < MIN_VALIDATION_LABELS:
        floor = {"baseline": "majority class", "value": None, "passed": None,
                 "reason": f"{n_val} validation labels; at least {MIN_VALIDATION_LABELS} to measure"}
        return metrics, {**base, "candidate": None, "floor": floor, "decision": "deploy",
                         "reason": f"proposals from {len(model.labels)} examples, deployed on request; "
                                   f"{floor['reason']}"}
    truth = labeled.targets[val].tolist()
    predicted = np.asarray(model.classes)[model.predict_proba(labeled.vectors[val]).argmax(axis=1)].tolist()
    f1 = macro_f1(truth, predicted, model.classes)
    metrics.update(primary=f1, macro_f1=f1, accuracy=float(np.mean(np.asarray(predicted) == np.asarray(truth))))
    majority = majority_class_f1(labeled.targets[train].tolist(), truth)
    passed = f1 > majority
    floor = {"baseline": "majority class", "value": majority, "candidate": f1, "passed": passed,
             "reason": f"macro_f1 {f1:.4f} {'beats' if passed else 'does not beat'} the majority class "
                       f"({majority:.4f})"}
    return metrics, {**base, "candidate": f1, "floor": floor, "decision": "deploy" if passed else "reject",
                     "reason": floor["reason"] if passed else "below the deployment floor: " + floor["reason"]}


@transaction.atomic
def _register(project: Project, model, metrics: dict, comparison: dict) -> ModelVersion:
    Project.objects.select_for_update().get(pk=project.pk)
    number = (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    version = ModelVersion(
        project=project, number=number, backend=model.method, architecture=selectors.embedding_key(),
        class_ids=model.classes, dataset_size=len(model.labels), validation_size=metrics["num_images"],
        metrics=metrics, primary_metric=metrics["primary"], comparison=comparison,
        status=VersionStatus.CANDIDATE if comparison["decision"] == "deploy" else VersionStatus.REJECTED,
    )
    version.weights.save(f"{model.method}.npz", ContentFile(model.to_bytes()), save=False)
    version.save()
    return version


def latest_proposal_version(project: Project) -> ModelVersion | None:
    """The newest proposal version that was deployed at some point (it has pre-labels)."""
    return (ModelVersion.objects.filter(project=project, backend__in=EMBEDDING_BACKENDS)
            .exclude(status=VersionStatus.REJECTED).order_by("-number").first())


def proposals_page(*, project: Project, label_class: int | None = None, order: str = "-confidence",
                   limit: int = 60, offset: int = 0) -> dict:
    """The latest proposal version's pre-labels of training images still in the queue, for a
    grid: optionally one proposed class, most confident first (``-confidence``) or least.
    Validation images are left out: their labels must stay a random sample, so they come
    through the queue only. Confidence is the top class probability; the order follows the
    stored uncertainty, which falls as it rises."""
    version = latest_proposal_version(project)
    if version is None:
        return {"model_version": None, "count": 0, "items": []}
    rows = (Prediction.objects.filter(model_version=version, image__tasks__status=TaskStatus.OPEN)
            .exclude(image__split=Split.VALIDATION).distinct())
    if label_class is not None:
        rows = rows.filter(payload__labels__0=label_class)
    rows = rows.order_by("uncertainty" if order == "-confidence" else "-uncertainty", "image_id")
    count = rows.count()
    page = list(rows.select_related("image").defer("embedding")[offset : offset + limit])
    items = [{"image_id": p.image_id, "prediction_id": p.pk, "label_class": (p.payload.get("labels") or [None])[0],
              "confidence": round(max(p.payload.get("probs") or [0.0]), 4), **image_urls(p.image)} for p in page]
    return {"model_version": version.number, "model_version_id": version.pk, "count": count, "items": items}
