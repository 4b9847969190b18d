"""Label Studio JSON (the full "JSON" format Label Studio imports and exports): tasks.json,
a list of tasks with `data.image`, the current label as the task's annotation and the
deployed model's prediction, when it has one, under `predictions`; images/. Boxes are
rectanglelabels in percent of the image, classes are choices; `from_name` "label" and
`to_name` "image" match the labeling config written beside it (config.xml)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from core.models import Prediction

from .items import ExportItem

FROM_NAME, TO_NAME = "label", "image"


def labelstudio_write(items, classes, sink, *, include_images: bool, on_item, detection: bool) -> None:
    names = {c.pk: c.name for c in classes}
    tasks = []
    for item in items:
        item: ExportItem
        image = item.image
        task = {
            "id": image.pk,
            "data": {"image": f"images/{item.file_name}"},
            "annotations": [
                {"result": _result(item.payload, names, image, detection), "was_cancelled": False,
                 "ground_truth": False}
            ],
            "predictions": [],
            "meta": {"split": item.split},
        }
        prediction = _deployed_prediction(image)
        if prediction is not None:
            task["predictions"].append(
                {
                    "model_version": str(prediction.model_version_id),
                    "score": 1.0 - prediction.uncertainty,
                    "result": _result(prediction.payload, names, image, detection),
                }
            )
        tasks.append(task)
        if include_images:
            sink.write_stored(f"images/{item.file_name}", item.stored_name)
        on_item()
    sink.write_text("tasks.json", json.dumps(tasks, indent=1))
    sink.write_text("config.xml", _labeling_config(classes, detection))


def _deployed_prediction(image):
    return (
        Prediction.objects.filter(
            image=image, model_version__project_id=image.project_id, model_version__is_deployed=True
        )
        .only("payload", "uncertainty", "model_version_id")
        .first()
    )


def _result(payload: dict, names: dict[int, str], image, detection: bool) -> list[dict]:
    if not detection:
        chosen = [names[label] for label in payload.get("labels", []) if label in names]
        return [_region("choices", {"choices": chosen}, image)] if chosen else []
    regions = []
    for box in payload.get("boxes", []):
        if box["label"] not in names:
            continue
        value = {
            "x": box["x1"] / image.width * 100,
            "y": box["y1"] / image.height * 100,
            "width": (box["x2"] - box["x1"]) / image.width * 100,
            "height": (box["y2"] - box["y1"]) / image.height * 100,
            "rotation": 0,
            "rectanglelabels": [names[box["label"]]],
        }
        region = _region("rectanglelabels", value, image)
        region["id"] = f"r{len(regions) + 1}"
        if "score" in box:
            region["score"] = box["score"]
        regions.append(region)
    return regions


def _region(kind: str, value: dict, image) -> dict:
    return {
        "type": kind,
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "original_width": image.width,
        "original_height": image.height,
        "image_rotation": 0,
        "value": value,
    }


def _labeling_config(classes, detection: bool) -> str:
    view = ET.Element("View")
    ET.SubElement(view, "Image", name=TO_NAME, value="$image")
    if detection:
        control = ET.SubElement(view, "RectangleLabels", name=FROM_NAME, toName=TO_NAME)
        for c in classes:
            ET.SubElement(control, "Label", value=c.name, background=c.color)
    else:
        control = ET.SubElement(view, "Choices", name=FROM_NAME, toName=TO_NAME, choice="single")
        for c in classes:
            ET.SubElement(control, "Choice", value=c.name)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"
