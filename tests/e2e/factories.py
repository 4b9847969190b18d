"""A detection project with a deployed model and pre-labeled images, made via the ORM."""
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from core.models import ModelVersion, Prediction, Project, Split
from labeling.display import display_copy
from labeling.models import Membership
from labeling.services import label_class_create
from tests.factories import ImageFactory, TaskFactory

IMAGE_W, IMAGE_H = 640, 480


@dataclass
class Scene:
    project: Project
    classes: dict  # name -> LabelClass
    version: ModelVersion
    predictions: dict = field(default_factory=dict)  # image id -> Prediction


def detection_scene(*, members: dict, images: int = 3, width: int = IMAGE_W, height: int = IMAGE_H) -> Scene:
    """`members`: {user: role}. Every image gets two pre-labelled boxes: a car at the top
    left and a person at the bottom right; earlier images are more uncertain."""
    project = Project.objects.create(name="Street scenes", task_type="detection")
    for user, role in members.items():
        Membership.objects.create(project=project, user=user, role=role)
    classes = {
        name: label_class_create(project=project, name=name, hotkey=hotkey)
        for name, hotkey in (("car", "1"), ("person", "2"), ("tree", "3"))
    }
    class_ids = [c.pk for c in classes.values()]
    version = ModelVersion.objects.create(
        project=project, number=1, backend="yolo", is_deployed=True, status="deployed",
        class_ids=class_ids, primary_metric=0.61,
    )
    scene = Scene(project=project, classes=classes, version=version)
    for n in range(images):
        image = ImageFactory(project=project, width=width, height=height, split=Split.TRAIN)
        if max(width, height) > settings.VISION_DISPLAY_MAX_SIDE:
            _attach_display_version(image)
        uncertainty = 1.0 - n / 10
        payload = {"boxes": [
            {"x1": 40.0, "y1": 40.0, "x2": 160.0, "y2": 120.0, "label": classes["car"].pk,
             "score": 0.91, "probs": [0.91, 0.06, 0.03]},
            {"x1": 380.0, "y1": 260.0, "x2": 500.0, "y2": 420.0, "label": classes["person"].pk,
             "score": 0.55, "probs": [0.1, 0.55, 0.35]},
        ]}
        scene.predictions[image.pk] = Prediction.objects.create(
            image=image, model_version=version, payload=payload, uncertainty=uncertainty
        )
        TaskFactory(image=image, priority=uncertainty)
    return scene


def _attach_display_version(image) -> None:
    """What ingest stores for a large image: a JPEG no larger than VISION_DISPLAY_MAX_SIDE."""
    with image.file.open("rb") as stored:
        display = display_copy(PILImage.open(stored))
    image.display_file.save(f"{image.sha256}.jpg", ContentFile(display))


def classification_scene(*, members: dict, images: int = 2) -> Scene:
    """Every image pre-labelled "cat" at 0.7 over "dog"."""
    project = Project.objects.create(name="Pets", task_type="classification")
    for user, role in members.items():
        Membership.objects.create(project=project, user=user, role=role)
    classes = {name: label_class_create(project=project, name=name) for name in ("cat", "dog")}
    version = ModelVersion.objects.create(
        project=project, number=1, backend="classifier", is_deployed=True, status="deployed",
        class_ids=[c.pk for c in classes.values()],
    )
    scene = Scene(project=project, classes=classes, version=version)
    for n in range(images):
        image = ImageFactory(project=project, split=Split.TRAIN)
        scene.predictions[image.pk] = Prediction.objects.create(
            image=image, model_version=version, uncertainty=1.0 - n / 10,
            payload={"labels": [classes["cat"].pk], "probs": [0.7, 0.3]},
        )
        TaskFactory(image=image, priority=1.0 - n / 10)
    return scene
