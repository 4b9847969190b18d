"""Labels made elsewhere become import annotations; every bad entry gets its own error
naming the file and the problem, and every good entry of the same import still lands."""

import json
import shutil
from pathlib import Path

import pytest

from core.models import LabelClass
from labeling.importers.service import import_run
from labeling.importers.sources import folder_files
from labeling.models import Annotation, AnnotationSource, Task, TaskStatus
from labeling.payloads import PayloadError
from labeling.services import annotation_import_create
from tests.labeling.test_ingest import image_bytes, make_project
from tests.labeling.test_queue import add_images

DEEPFOREST = Path(__file__).resolve().parents[2] / ".venv/lib/python3.11/site-packages/deepforest/data"


@pytest.fixture(autouse=True)
def _media_outside_the_import_folders(settings, tmp_path_factory):
    """Tests import from tmp_path; stored media must not show up in those folders."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")


@pytest.fixture
def project(db):
    return make_project(classes=("tree", "car"))


def write_images(folder: Path, names_sizes) -> None:
    for n, (name, (w, h)) in enumerate(names_sizes):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            image_bytes(w, h, fmt="PNG" if name.endswith(".png") else "JPEG", color=(n * 20, 40, 90))
        )


def run(project, folder, label_format, **options):
    return import_run(
        project=project, files=list(folder_files(str(folder))), label_format=label_format, **options
    )


def errors_of(report):
    return {item["name"]: item["error"] for item in report["items"] if item["status"] == "error"}


def boxes_of(name):
    annotation = Annotation.objects.get(image__original_name=name)
    names = dict(LabelClass.objects.values_list("id", "name"))
    return [(names[b["label"]], b["x1"], b["y1"], b["x2"], b["y2"]) for b in annotation.payload["boxes"]]


def coco(images, annotations, categories=({"id": 1, "name": "tree"}, {"id": 2, "name": "car"})):
    return {"images": images, "annotations": annotations, "categories": list(categories)}


def test_coco_labels_land_and_bad_entries_are_reported_one_by_one(project, tmp_path):
    write_images(
        tmp_path,
        [
            ("a.jpg", (100, 80)),
            ("b.jpg", (100, 80)),
            ("c.jpg", (100, 80)),
            ("d.jpg", (100, 80)),
            ("e.jpg", (100, 80)),
        ],
    )
    document = coco(
        images=[
            {"id": n, "file_name": f"{c}.jpg", "width": 100, "height": 80} for n, c in enumerate("abcdef", 1)
        ],
        annotations=[
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 100, 80]},
            {"id": 3, "image_id": 2, "category_id": 7, "bbox": [10, 10, 10, 10]},
            {"id": 4, "image_id": 3, "category_id": 1, "bbox": [-15, 10, 10, 10]},
            {"id": 5, "image_id": 4, "category_id": 1, "bbox": [90, 70, 30, 30]},
            {"id": 6, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 7, "image_id": 5, "category_id": 1, "bbox": [10, 10, -5, 10]},
        ],
    )
    (tmp_path / "instances.json").write_text(json.dumps(document))

    report = run(project, tmp_path, "coco")

    assert report["images"]["created"] == 5
    assert report["labels"] == {"format": "coco", "created": 1, "unchanged": 0, "kept_as_opinion": 0, "error": 6}
    errors = errors_of(report)
    assert errors["instances.json: image 'b.jpg'"] == "annotation 3 has unknown category id 7"
    assert "lies outside the 100x80 image" in errors["instances.json: image 'c.jpg'"]
    assert "lies outside the 100x80 image" in errors["instances.json: image 'd.jpg'"]
    assert "has no area" in errors["instances.json: image 'e.jpg'"]
    assert "image 'f.jpg' is not in the project" in errors["instances.json: image 'f.jpg'"]
    assert errors["instances.json: annotation 6"] == "refers to image id 99, which the file does not list"
    assert boxes_of("a.jpg") == [("tree", 10, 20, 40, 60), ("car", 0, 0, 100, 80)]
    annotation = Annotation.objects.get()
    assert annotation.source == AnnotationSource.IMPORT
    assert Task.objects.get(image__original_name="a.jpg").status == TaskStatus.DONE
    assert Task.objects.get(image__original_name="b.jpg").status == TaskStatus.OPEN


def test_malformed_coco_json_is_reported_and_the_images_still_land(project, tmp_path):
    write_images(tmp_path, [("a.jpg", (50, 50))])
    (tmp_path / "labels.json").write_text('{"images": [1, 2,')
    report = run(project, tmp_path, "coco")
    assert errors_of(report)["labels.json"].startswith("malformed JSON:")
    assert report["images"]["created"] == 1
    assert not Annotation.objects.exists()


def test_unknown_categories_are_refused_mapped_or_created(project, tmp_path):
    write_images(tmp_path, [("a.jpg", (50, 50)), ("b.jpg", (50, 50))])
    categories = [{"id": 1, "name": "bus"}, {"id": 2, "name": "oak"}]
    document = coco(
        images=[{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        annotations=[
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [1, 1, 5, 5]},
        ],
        categories=categories,
    )
    (tmp_path / "c.json").write_text(json.dumps(document))

    refused = run(project, tmp_path, "coco")
    assert errors_of(refused)["c.json: image 'a.jpg'"] == (
        "unknown category 'bus'; map it to a project class or allow creating classes"
    )

    mapped = run(project, tmp_path, "coco", class_map={"bus": "car", "oak": "maple"})
    assert boxes_of("a.jpg") == [("car", 1, 1, 6, 6)]
    assert errors_of(mapped)["c.json: image 'b.jpg'"] == (
        "category 'oak' is mapped to 'maple', which is not a class of this project"
    )

    created = run(project, tmp_path, "coco", create_classes=True)
    assert created["labels"]["created"] == 2
    assert boxes_of("b.jpg") == [("oak", 1, 1, 6, 6)]
    assert set(LabelClass.objects.values_list("name", flat=True)) == {"tree", "car", "bus", "oak"}


def test_label_size_that_differs_from_the_image_is_refused(project, tmp_path):
    write_images(tmp_path, [("a.jpg", (50, 40))])
    document = coco(images=[{"id": 1, "file_name": "a.jpg", "width": 40, "height": 50}], annotations=[])
    (tmp_path / "c.json").write_text(json.dumps(document))
    report = run(project, tmp_path, "coco")
    assert (
        "gives the size of 'a.jpg' as 40x50, but the image is 50x40"
        in errors_of(report)["c.json: image 'a.jpg'"]
    )


def test_yolo_labels_land_and_bad_lines_refuse_their_file(project, tmp_path):
    write_images(
        tmp_path / "images",
        [("a.jpg", (100, 50)), ("b.jpg", (100, 50)), ("c.jpg", (100, 50)), ("d.jpg", (100, 50))],
    )
    (tmp_path / "data.yaml").write_text("train: images\nval: images\nnames:\n  0: tree\n  1: car\n")
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.2 0.2\n")
    (labels / "b.txt").write_text("0 0.5 0.5 0.2\n")
    (labels / "c.txt").write_text("0 0.5 0.5 0.2 0.4\n1 1.2 0.5 0.1 0.1\n")
    (labels / "d.txt").write_text("5 0.5 0.5 0.2 0.4\n")
    (labels / "zz.txt").write_text("0 0.5 0.5 0.2 0.4\n")

    report = run(project, tmp_path, "yolo")

    errors = errors_of(report)
    assert (
        errors["labels/b.txt"] == "line 1: expected 5 columns (class x_center y_center width height), got 4"
    )
    assert errors["labels/c.txt"] == "line 2: value 1.2 is outside [0, 1]"
    assert errors["labels/d.txt"] == "line 1: unknown class index 5 (the class list names 2)"
    assert "image 'zz' is not in the project" in errors["labels/zz.txt"]
    assert report["labels"]["created"] == 1
    assert boxes_of("a.jpg") == [("tree", 40, 15, 60, 35), ("car", 0, 0, 20, 10)]


def test_yolo_without_data_yaml_is_reported(project, tmp_path):
    write_images(tmp_path, [("a.jpg", (10, 10))])
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    report = run(project, tmp_path, "yolo")
    assert "a data.yaml or a classes.txt" in errors_of(report)["data.yaml"]
    assert report["images"]["created"] == 1


def test_voc_from_deepforest_lands(project, tmp_path):
    for name in ("OSBS_029.png", "OSBS_029.xml"):
        shutil.copy(DEEPFOREST / name, tmp_path / name)
    report = run(project, tmp_path, "voc", class_map={"Tree": "tree"})
    assert report["labels"] == {"format": "voc", "created": 1, "unchanged": 0, "kept_as_opinion": 0, "error": 0}
    boxes = boxes_of("OSBS_029.png")
    # the file's first box reads xmin 203, ymin 67 (1-based pixel numbers): edges 202 and 66
    assert len(boxes) > 10 and boxes[0] == ("tree", 202, 66, 227, 90)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotation><filename>&lol2;</filename></annotation>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<annotation><filename>&secret;</filename></annotation>"""
VOC_GOOD = """<annotation><filename>a.jpg</filename><size><width>60</width><height>40</height></size>
<object><name>car</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>25</xmax><ymax>30</ymax></bndbox></object>
</annotation>"""


def test_broken_and_hostile_voc_xml_is_refused_and_good_files_land(project, tmp_path):
    write_images(tmp_path, [("a.jpg", (60, 40))])
    (tmp_path / "a.xml").write_text(VOC_GOOD)
    (tmp_path / "broken.xml").write_text("<annotation><filename>a.jpg</filename>")
    (tmp_path / "laughs.xml").write_text(BILLION_LAUGHS)
    (tmp_path / "xxe.xml").write_text(EXTERNAL_ENTITY)
    (tmp_path / "nobox.xml").write_text(
        "<annotation><filename>a.jpg</filename><object><name>car</name>"
        "<bndbox><xmin>x</xmin></bndbox></object></annotation>"
    )

    report = run(project, tmp_path, "voc")

    errors = errors_of(report)
    assert errors["broken.xml"].startswith("broken XML:")
    assert errors["laughs.xml"] == "refused unsafe XML (DTDForbidden)"
    assert errors["xxe.xml"] == "refused unsafe XML (DTDForbidden)"
    assert errors["nobox.xml"] == "object 1: <bndbox/xmin> is not a number: 'x'"
    assert boxes_of("a.jpg") == [("car", 4, 5, 25, 30)]


def test_folder_per_class_labels_classification_images(db, tmp_path):
    project = make_project(task_type="classification", classes=("cat",))
    write_images(tmp_path, [("cat/1.jpg", (20, 20)), ("dog/1.jpg", (20, 20)), ("loose.jpg", (20, 20))])
    report = run(project, tmp_path, "folder", create_classes=True)
    assert errors_of(report) == {"loose.jpg": "not inside a class folder (expected <class>/<image>)"}
    image_ids = {item["name"]: item["image_id"] for item in report["items"] if item["status"] == "created"}
    names = dict(LabelClass.objects.values_list("id", "name"))
    labels = {a.image_id: [names[x] for x in a.payload["labels"]] for a in Annotation.objects.all()}
    assert labels == {image_ids["cat/1.jpg"]: ["cat"], image_ids["dog/1.jpg"]: ["dog"]}


def test_an_imported_classification_label_without_a_class_is_refused(db):
    project = make_project(task_type="classification", classes=("cat",))
    [image] = add_images(project, [0.5])
    with pytest.raises(PayloadError, match="has no class"):
        annotation_import_create(image=image, payload={"labels": []})
    assert not Annotation.objects.filter(image=image).exists()
    assert Task.objects.get(image=image).status == TaskStatus.OPEN


def test_classification_csv_lands_and_reports_bad_rows(db, tmp_path):
    project = make_project(task_type="classification", classes=("cat", "dog"))
    write_images(tmp_path, [("a.jpg", (20, 20)), ("b.jpg", (20, 20))])
    (tmp_path / "labels.csv").write_text("image,label\na.jpg,cat\nb.jpg,\nmissing.jpg,dog\n,cat\n")
    report = run(project, tmp_path, "csv")
    errors = errors_of(report)
    assert errors["labels.csv: image 'b.jpg'"] == "line 3: the class column is empty"
    assert "image 'missing.jpg' is not in the project" in errors["labels.csv: image 'missing.jpg'"]
    assert errors["labels.csv: line 5"] == "the image column is empty"
    cat = LabelClass.objects.get(name="cat").pk
    assert Annotation.objects.get(image__original_name="a.jpg").payload == {"labels": [cat]}


def test_format_that_does_not_fit_the_project_is_refused(db, tmp_path):
    from labeling.importers.service import ImportRefused

    project = make_project(task_type="classification")
    with pytest.raises(ImportRefused, match="coco labels do not fit a classification project"):
        run(project, tmp_path, "coco")


def test_yolo_dataset_inside_a_zip_lands_with_its_labels(project, tmp_path):
    import zipfile

    archive = tmp_path / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ds/data.yaml", "names: [tree, car]\n")
        for n in range(3):
            zf.writestr(f"ds/images/train/{n}.jpg", image_bytes(100, 50, color=(n * 40, 0, 0)))
            zf.writestr(f"ds/labels/train/{n}.txt", "1 0.5 0.5 0.2 0.4\n")
        zf.writestr("ds/labels/train/9.txt", "0 0.5 0.5 1.5 0.4\n")
    report = import_run(project=project, files=[("dataset.zip", str(archive))], label_format="yolo")
    assert report["images"]["created"] == 3
    assert report["labels"] == {"format": "yolo", "created": 3, "unchanged": 0, "kept_as_opinion": 0, "error": 1}
    assert errors_of(report) == {"ds/labels/train/9.txt": "line 1: value 1.5 is outside [0, 1]"}
    assert boxes_of("2.jpg") == [("car", 40, 15, 60, 35)]


def test_labels_alone_apply_to_images_imported_earlier(project, tmp_path):
    write_images(tmp_path / "first", [("a.jpg", (60, 40))])
    run(project, tmp_path / "first", "")
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "a.xml").write_text(VOC_GOOD)
    report = run(project, tmp_path / "later", "voc")
    assert report["images"] == {"created": 0, "duplicate": 0, "error": 0}
    assert report["labels"]["created"] == 1
    assert boxes_of("a.jpg") == [("car", 4, 5, 25, 30)]


def test_importing_the_same_labels_again_records_nothing_new(project, tmp_path):
    write_images(tmp_path, [("a.jpg", (60, 40))])
    (tmp_path / "a.xml").write_text(VOC_GOOD)
    first = run(project, tmp_path, "voc")
    again = run(project, tmp_path, "voc")
    assert first["labels"]["created"] == 1, first
    assert again["images"]["duplicate"] == 1, again
    assert again["labels"] == {"format": "voc", "created": 0, "unchanged": 1, "kept_as_opinion": 0, "error": 0}
    assert Annotation.objects.count() == 1
