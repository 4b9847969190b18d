"""COCO and YOLO segmentation in and out: imports land as validated polygons, exports load
in pycocotools and ultralytics, and export-then-import keeps every polygon within 1 px."""

import json
import math
import random

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from labeling.exporters.service import export_write
from labeling.exporters.sinks import DirSink
from labeling.importers.service import import_run
from labeling.importers.sources import folder_files
from labeling.payloads import instance_shape
from labeling.selectors import image_latest_labels
from ml.metrics import mask_rle, rings_mask
from tests.labeling.test_ingest import image_bytes, make_project

COUNT = 10


def star(rng, cx, cy, radius, points):
    """A simple polygon, star-shaped around (cx, cy): angles evenly spread, jittered."""
    angles = [(k + rng.uniform(0, 0.8)) * 2 * math.pi / points for k in range(points)]
    return [[round(cx + rng.uniform(0.5, 1) * radius * math.cos(a), 2),
             round(cy + rng.uniform(0.5, 1) * radius * math.sin(a), 2)] for a in angles]


def flat(ring):
    return [v for point in ring for v in point]


def write_coco_segmentation(folder, seed=5):
    """COUNT images with star polygons, a two-part instance, a ring with a hole as
    compressed RLE and another as uncompressed RLE, and their COCO file."""
    rng = random.Random(seed)
    images, annotations = [], []

    def add(image_id, category, segmentation):
        annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                            "segmentation": segmentation, "bbox": [0, 0, 1, 1], "iscrowd": 0})

    for n in range(COUNT):
        w, h = rng.randint(60, 120), rng.randint(50, 100)
        name = f"img{n:02d}.jpg"
        (folder / name).write_bytes(image_bytes(w, h, color=(n * 9, 100, 50)))
        images.append({"id": n + 1, "file_name": name, "width": w, "height": h})
        for _ in range(rng.randint(1, 3)):
            radius = rng.uniform(6, min(w, h) / 3)
            cx, cy = rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)
            add(n + 1, rng.choice([1, 2]), [flat(star(rng, cx, cy, radius, rng.randint(5, 9)))])
    w, h = images[0]["width"], images[0]["height"]
    add(1, 1, [flat([[2, 2], [12, 2], [12, 12], [2, 12]]), flat([[30, 30], [40, 30], [35, 40]])])
    holed = [[[20, 10], [50, 10], [50, 40], [20, 40]], [[30, 20], [40, 20], [40, 30], [30, 30]]]
    add(1, 2, mask_rle(rings_mask(holed, h, w)))
    uncompressed = rings_mask([[[5, 20], [25, 20], [25, 45], [5, 45]]], images[1]["height"], images[1]["width"])
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], uncompressed.ravel(order="F"), [2]])) != 0),
                   prepend=0)
    add(2, 1, {"size": list(uncompressed.shape), "counts": [int(v) for v in runs]})
    document = {"images": images, "annotations": annotations,
                "categories": [{"id": 1, "name": "leaf"}, {"id": 2, "name": "cell"}]}
    (folder / "coco.json").write_text(json.dumps(document))
    return document, holed


def stored(project) -> dict[str, list[tuple[str, dict]]]:
    names = dict(project.label_classes.values_list("id", "name"))
    return {a.image.original_name: [(names[i["label"]], i) for i in a.payload["polygons"]]
            for a in image_latest_labels(project).select_related("image")}


def _hausdorff(a, b) -> float:
    """Hausdorff distance of two shapes' outlines, densified so it is not vertex-only."""
    return shapely.hausdorff_distance(a.boundary, b.boundary, densify=0.05)


def assert_same_polygons(before: dict, after: dict, tolerance=1.0):
    """Same images, same instances in the same order with the same classes, every outline
    within `tolerance` pixels of the original (Hausdorff distance of the shapes, densified)."""
    assert before.keys() == after.keys()
    worst = 0.0
    for name in before:
        assert [c for c, _ in before[name]] == [c for c, _ in after[name]], name
        for (_, a), (_, b) in zip(before[name], after[name]):
            distance = _hausdorff(instance_shape(a), instance_shape(b))
            worst = max(worst, distance)
            assert distance <= tolerance, (name, a, b, distance)
    return worst


@pytest.fixture
def segmented(db, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    document, holed = write_coco_segmentation(source)
    project = make_project(task_type="segmentation", classes=("leaf", "cell"))
    report = import_run(project=project, files=list(folder_files(str(source))), label_format="coco")
    assert report["labels"] == {"format": "coco", "created": COUNT, "unchanged": 0, "kept_as_opinion": 0, "error": 0}, report
    return project, document, holed


def test_coco_polygons_land_as_given_and_rle_lands_as_its_outlines(segmented):
    project, document, holed = segmented
    labels = stored(project)
    files = {i["id"]: i["file_name"] for i in document["images"]}
    polygons = [a for a in document["annotations"] if isinstance(a["segmentation"], list)
                and len(a["segmentation"]) == 1]
    for ann in polygons:
        points = [[ann["segmentation"][0][k], ann["segmentation"][0][k + 1]]
                  for k in range(0, len(ann["segmentation"][0]), 2)]
        assert any(i.get("points") == points for _, i in labels[files[ann["image_id"]]]), ann
    two_parts = labels["img00.jpg"][-2][1]
    assert len(two_parts["rings"]) == 2 and instance_shape(two_parts).area == pytest.approx(100 + 50)
    cell_class, with_hole = labels["img00.jpg"][-1]
    truth = Polygon(holed[0], [holed[1]])
    shape = instance_shape(with_hole)
    assert cell_class == "cell" and len(shape.interiors) == 1
    assert _hausdorff(shape, truth) <= 1.0
    assert shape.intersection(truth).area / shape.union(truth).area >= 0.9
    square = instance_shape(labels["img01.jpg"][-1][1])
    assert _hausdorff(square, Polygon([[5, 20], [25, 20], [25, 45], [5, 45]])) <= 1.0


def test_coco_segmentation_export_loads_in_pycocotools_and_masks_match(segmented, tmp_path):
    from pycocotools.coco import COCO

    project, _, _ = segmented
    out = tmp_path / "export"
    export_write(project=project, export_format="coco", sink=DirSink(out))
    coco = COCO(str(out / "annotations.json"))
    labels = stored(project)
    by_name = {image["file_name"]: image for image in coco.dataset["images"]}
    kinds = set()
    for name, instances in labels.items():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[by_name[name]["id"]]))
        assert len(anns) == len(instances)
        for ann, (_, instance) in zip(anns, instances):
            kinds.add("rle" if isinstance(ann["segmentation"], dict) else "polygons")
            ours = rings_mask(instance.get("rings") or [instance["points"]], by_name[name]["height"],
                              by_name[name]["width"])
            theirs = coco.annToMask(ann)
            assert ours.sum() > 0 and (ours == theirs).mean() >= 0.999, name
            x, y, w, h = ann["bbox"]
            assert instance_shape(instance).bounds == pytest.approx((x, y, x + w, y + h))
    assert kinds == {"rle", "polygons"}


@pytest.mark.parametrize("export_format", ["coco", "yolo"])
def test_export_then_import_keeps_every_polygon_within_a_pixel(segmented, tmp_path, export_format):
    project, _, _ = segmented
    out = tmp_path / export_format
    export_write(project=project, export_format=export_format, sink=DirSink(out))
    fresh = make_project(task_type="segmentation", classes=("leaf", "cell"))
    report = import_run(project=fresh, files=list(folder_files(str(out))), label_format=export_format)
    assert report["images"]["created"] == COUNT, report
    assert report["labels"] == {"format": export_format, "created": COUNT, "unchanged": 0, "kept_as_opinion": 0, "error": 0}, [
        item for item in report["items"] if item["status"] == "error"]
    assert_same_polygons(stored(project), stored(fresh))


def test_yolo_segmentation_lines_are_normalized_outlines(segmented, tmp_path):
    project, _, _ = segmented
    out = tmp_path / "yolo"
    export_write(project=project, export_format="yolo", sink=DirSink(out), include_images=False)
    lines = [line.split() for path in out.glob("labels/*/*.txt") for line in path.read_text().splitlines()]
    assert len(lines) == sum(len(v) for v in stored(project).values())
    for columns in lines:
        assert len(columns) >= 7 and len(columns) % 2 == 1 and columns[0] in ("0", "1")
        assert all(0.0 <= float(v) <= 1.0 for v in columns[1:])


def test_bad_segmentations_refuse_their_image_and_the_rest_land(db, tmp_path):
    sizes = {"a.jpg": (40, 30), "b.jpg": (40, 30), "c.jpg": (40, 30), "d.jpg": (40, 30), "e.jpg": (40, 30),
             "f.jpg": (40, 30)}
    for name, (w, h) in sizes.items():
        (tmp_path / name).write_bytes(image_bytes(w, h, color=(len(name) * 20, ord(name[0]), 9)))
    images = [{"id": n, "file_name": name, "width": 40, "height": 30} for n, name in enumerate(sizes, start=1)]
    good = flat([[1, 1], [20, 1], [20, 20]])
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [good]},
        {"id": 2, "image_id": 2, "category_id": 1, "segmentation": [[1, 2, 3, 4]]},
        {"id": 3, "image_id": 3, "category_id": 1, "segmentation": {"size": [30, 40], "counts": [5, 10]},
         "iscrowd": 1},
        {"id": 4, "image_id": 4, "category_id": 1, "segmentation": {"size": [20, 40], "counts": "PP"}},
        {"id": 5, "image_id": 5, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"id": 6, "image_id": 6, "category_id": 1, "segmentation": [flat([[1, 1], [60, 1], [20, 20]])]},
    ]
    (tmp_path / "labels.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "leaf"}]}))
    project = make_project(task_type="segmentation", classes=("leaf",))
    report = import_run(project=project, files=list(folder_files(str(tmp_path))), label_format="coco")
    assert report["labels"]["created"] == 1 and report["labels"]["error"] == 5, report
    errors = {item["name"]: item["error"] for item in report["items"] if item["status"] == "error"}
    messages = " | ".join(errors.values())
    for expected in ("flat list of at least 3 x, y pairs", "crowd region", "the RLE is 40x20",
                     "needs a 'segmentation'", "lies outside the 40x30 image"):
        assert expected in messages, messages
    assert list(stored(project)) == ["a.jpg"]


def test_a_yolo_segmentation_file_with_a_bad_line_is_refused(db, tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.jpg").write_bytes(image_bytes(40, 30, color=(ord(name), 0, 0)))
    (tmp_path / "data.yaml").write_text("names: [leaf]\n")
    (tmp_path / "a.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5\n")
    (tmp_path / "b.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5\n0 0.5 0.5 0.2 0.2\n")
    project = make_project(task_type="segmentation", classes=("leaf",))
    report = import_run(project=project, files=list(folder_files(str(tmp_path))), label_format="yolo")
    assert report["labels"]["created"] == 1 and report["labels"]["error"] == 1, report
    (error,) = [item["error"] for item in report["items"] if item["status"] == "error"]
    assert "line 2: expected a class and 3 or more x y pairs" in error
    ((_, instance),) = stored(project)["a.jpg"]
    assert [v for point in instance["points"] for v in point] == pytest.approx([4, 3, 20, 3, 20, 15])


@pytest.mark.slow
def test_ultralytics_trains_one_segmentation_epoch_on_the_yolo_export(segmented, tmp_path, monkeypatch):
    from ultralytics import YOLO

    project, _, _ = segmented
    out = tmp_path / "yolo"
    export_write(project=project, export_format="yolo", sink=DirSink(out))
    monkeypatch.chdir(tmp_path)
    model = YOLO("yolov8n-seg.yaml")
    model.train(data=str(out / "data.yaml"), epochs=1, imgsz=64, batch=8, workers=0, device="cpu", plots=False,
                val=True, project=str(tmp_path / "runs"), name="smoke", verbose=False, amp=False)
    assert (tmp_path / "runs/smoke/weights/last.pt").is_file()
    assert model.trainer.metrics.get("metrics/mAP50(M)") is not None
