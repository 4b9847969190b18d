"""Exports hold each labeled image's latest accepted label and its split, and independent
readers accept them: pycocotools, ultralytics, an XML parser, our own importers."""

import csv
import json
import random
import xml.etree.ElementTree as ET

import pytest
import yaml

from core.models import Image, LabelClass, Split
from labeling.exporters.service import ExportRefused, export_write
from labeling.exporters.sinks import DirSink
from labeling.importers.service import import_run
from labeling.importers.sources import folder_files
from labeling.models import Annotation, AnnotationKind, AnnotationState, ReviewStatus
from labeling.selectors import image_latest_labels
from tests.labeling.test_ingest import image_bytes, make_project


def write_coco_dataset(folder, count=12, seed=3):
    """`count` images with random float boxes, and their COCO file."""
    rng = random.Random(seed)
    images, annotations = [], []
    for n in range(count):
        w, h = rng.randint(60, 120), rng.randint(50, 100)
        name = f"img{n:02d}.jpg"
        (folder / name).write_bytes(image_bytes(w, h, color=(n * 9, 100, 50)))
        images.append({"id": n + 1, "file_name": name, "width": w, "height": h})
        for _ in range(rng.randint(0, 3)):
            x, y = rng.uniform(0, w / 2), rng.uniform(0, h / 2)
            bw, bh = rng.uniform(2, w / 2 - 1), rng.uniform(2, h / 2 - 1)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": n + 1,
                    "category_id": rng.choice([1, 2]),
                    "bbox": [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                }
            )
    document = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "tree"}, {"id": 2, "name": "car"}],
    }
    (folder / "coco.json").write_text(json.dumps(document))
    return document


def boxes_by_file(document):
    names = {c["id"]: c["name"] for c in document["categories"]}
    files = {i["id"]: i["file_name"] for i in document["images"]}
    result = {name: [] for name in files.values()}
    for ann in document["annotations"]:
        result[files[ann["image_id"]]].append((names[ann["category_id"]], *ann["bbox"]))
    return {k: sorted(v) for k, v in result.items()}


@pytest.fixture
def labeled(db, tmp_path):
    """A detection project imported from a COCO dataset; returns (project, document)."""
    source = tmp_path / "source"
    source.mkdir()
    document = write_coco_dataset(source)
    project = make_project(classes=("tree", "car"))
    report = import_run(project=project, files=list(folder_files(str(source))), label_format="coco")
    assert report["labels"]["error"] == 0 and report["labels"]["created"] == 12
    return project, document


def test_latest_accepted_label_wins_and_rejected_skipped_or_late_work_does_not(labeled):
    project, _ = labeled
    image = Image.objects.get(original_name="img00.jpg")
    tree = LabelClass.objects.get(name="tree").pk
    box = {"x1": 1.0, "y1": 1.0, "x2": 5.0, "y2": 5.0, "label": tree}

    def add(**fields):
        return Annotation.objects.create(project=project, image=image, payload={"boxes": [box]}, **fields)

    corrected = add(kind=AnnotationKind.CORRECT)
    add(kind=AnnotationKind.CORRECT, review_status=ReviewStatus.REJECTED)
    add(kind=AnnotationKind.SKIP)
    add(kind=AnnotationKind.CORRECT, state=AnnotationState.EXTRA_OPINION)
    latest = {a.image_id: a.pk for a in image_latest_labels(project)}
    assert latest[image.pk] == corrected.pk
    assert len(latest) == 12

    accepted = add(kind=AnnotationKind.ACCEPT, review_status=ReviewStatus.ACCEPTED)
    assert {a.image_id: a.pk for a in image_latest_labels(project)}[image.pk] == accepted.pk


def test_coco_round_trip_keeps_boxes_within_a_pixel_and_pycocotools_loads_it(labeled, tmp_path):
    from pycocotools.coco import COCO

    project, document = labeled
    out = tmp_path / "export"
    export_write(project=project, export_format="coco", sink=DirSink(out))

    coco = COCO(str(out / "annotations.json"))
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"tree", "car"}
    exported = json.loads((out / "annotations.json").read_text())
    before, after = boxes_by_file(document), boxes_by_file(exported)
    assert before.keys() == after.keys()
    for name in before:
        assert len(before[name]) == len(after[name]), name
        for (c1, *b1), (c2, *b2) in zip(before[name], after[name]):
            assert c1 == c2 and max(abs(p - q) for p, q in zip(b1, b2)) <= 1.0, name
    splits = {i["file_name"]: i["split"] for i in exported["images"]}
    for image in Image.objects.all():
        assert splits[image.original_name] == {Split.TRAIN: "train", Split.VALIDATION: "val"}[image.split]
        assert (out / "images" / image.original_name).is_file()


def test_voc_export_parses_back_to_the_same_boxes(labeled, tmp_path):
    project, document = labeled
    out = tmp_path / "voc"
    export_write(project=project, export_format="voc", sink=DirSink(out))
    before = boxes_by_file(document)
    for name, boxes in before.items():
        root = ET.parse(out / "Annotations" / name.replace(".jpg", ".xml")).getroot()
        assert root.findtext("filename") == name
        # VOC numbers pixels from 1: xmin is the first pixel inside the box, xmax the last
        parsed = sorted(
            (
                o.findtext("name"),
                *(float(o.findtext(f"bndbox/{k}")) - shift for k, shift in
                  (("xmin", 1), ("ymin", 1), ("xmax", 0), ("ymax", 0))),
            )
            for o in root.findall("object")
        )
        expected = sorted((c, x, y, x + w, y + h) for c, x, y, w, h in boxes)
        assert [p[0] for p in parsed] == [e[0] for e in expected]
        assert all(a == pytest.approx(b) for p, e in zip(parsed, expected) for a, b in zip(p[1:], e[1:]))
    listed = (out / "ImageSets/Main/train.txt").read_text().split()
    listed += (
        (out / "ImageSets/Main/val.txt").read_text().split()
        if (out / "ImageSets/Main/val.txt").exists()
        else []
    )
    assert sorted(listed) == sorted(n[:-4] for n in before)


def test_voc_and_csv_exports_import_into_a_fresh_project(labeled, tmp_path):
    project, document = labeled
    for export_format in ("voc", "csv"):
        out = tmp_path / export_format
        export_write(project=project, export_format=export_format, sink=DirSink(out))
        fresh = make_project(classes=("tree", "car"))
        report = import_run(project=fresh, files=list(folder_files(str(out))), label_format=export_format)
        assert report["images"]["created"] == 12, report
        assert report["labels"] == {"format": export_format, "created": 12, "unchanged": 0, "kept_as_opinion": 0, "error": 0}, (
            report
        )
        copied = {
            a.image.original_name: len(a.payload["boxes"])
            for a in image_latest_labels(fresh).select_related("image")
        }
        assert copied == {name: len(boxes) for name, boxes in boxes_by_file(document).items()}


def test_csv_export_has_a_row_per_box_and_the_split(labeled, tmp_path):
    project, document = labeled
    export_write(project=project, export_format="csv", sink=DirSink(tmp_path / "csv"), include_images=False)
    rows = list(csv.DictReader((tmp_path / "csv/labels.csv").open()))
    assert len([r for r in rows if r["label"]]) == len(document["annotations"])
    assert {r["split"] for r in rows} <= {"train", "val"}
    assert not (tmp_path / "csv/images").exists()


@pytest.mark.slow
def test_ultralytics_trains_one_epoch_on_the_yolo_export(labeled, tmp_path, monkeypatch):
    from ultralytics import YOLO

    project, document = labeled
    out = tmp_path / "yolo"
    export_write(project=project, export_format="yolo", sink=DirSink(out))
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "tree", 1: "car"}
    first = (out / "labels/train").glob("*.txt").__next__().read_text().split("\n")[0]
    assert first == "" or len(first.split()) == 5

    monkeypatch.chdir(tmp_path)
    model = YOLO("yolov8n.yaml")
    model.train(
        data=str(out / "data.yaml"),
        epochs=1,
        imgsz=32,
        batch=16,
        workers=0,
        device="cpu",
        plots=False,
        val=True,
        project=str(tmp_path / "runs"),
        name="smoke",
        verbose=False,
        amp=False,
    )
    assert (tmp_path / "runs/smoke/weights/last.pt").is_file()


def test_classification_exports_folders_for_yolo_and_refuses_coco(db, tmp_path):
    project = make_project(task_type="classification", classes=("cat", "dog"))
    source = tmp_path / "src"
    for n, cls in enumerate(["cat", "dog", "cat"]):
        (source / cls).mkdir(parents=True, exist_ok=True)
        (source / cls / f"{n}.jpg").write_bytes(image_bytes(color=(n * 50, 0, 0)))
    import_run(project=project, files=list(folder_files(str(source))), label_format="folder")
    out = tmp_path / "out"
    export_write(project=project, export_format="yolo", sink=DirSink(out))
    exported = sorted(p.relative_to(out).parts[1:] for p in out.rglob("*.jpg"))
    assert exported == [("cat", "0.jpg"), ("cat", "2.jpg"), ("dog", "1.jpg")]
    with pytest.raises(ExportRefused, match="coco holds boxes"):
        export_write(project=project, export_format="coco", sink=DirSink(tmp_path / "no"))
