"""Labels from Label Studio, CVAT, LabelImg/Roboflow (YOLO with classes.txt), COCO crowd
regions and VOC's difficult flag land as those tools meant them, and an import never puts
its label over a person's without being asked to."""

import json
import xml.etree.ElementTree as ET

import pytest
from PIL import Image as PILImage

from core.models import Image, LabelClass, Split
from labeling.exporters.service import export_write
from labeling.exporters.sinks import DirSink
from labeling.importers.service import import_run
from labeling.importers.sources import folder_files
from labeling.models import Annotation, AnnotationSource, AnnotationState
from labeling.selectors import image_current_label
from tests.labeling.test_import_labels import (  # noqa: F401 (a fixture)
    _media_outside_the_import_folders,
    boxes_of,
    errors_of,
    run,
    write_images,
)
from tests.labeling.test_ingest import make_project


@pytest.fixture
def project(db):
    return make_project(classes=("tree", "car"))


def flags_of(name):
    annotation = Annotation.objects.get(image__original_name=name, state=AnnotationState.SUBMITTED)
    return [{k: v for k, v in b.items() if k in ("ignore", "difficult")} for b in annotation.payload["boxes"]]


def ls_box(x, y, w, h, label, size=(200, 100)):
    """A rectanglelabels region as Label Studio's JSON export writes it (percent units)."""
    return {
        "id": "a1", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
        "original_width": size[0], "original_height": size[1], "image_rotation": 0,
        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]},
    }


def test_label_studio_tasks_land_from_their_latest_annotation_and_predictions_never_do(project, tmp_path):
    write_images(tmp_path, [(f"{c}.jpg", (200, 100)) for c in "abcde"])
    tasks = [
        {  # an uploaded file: Label Studio prefixes 8 hex digits to the name
            "id": 1, "data": {"image": "/data/upload/3/1a2b3c4d-a.jpg"},
            "annotations": [
                {"id": 10, "result": [ls_box(0, 0, 10, 10, "tree")], "was_cancelled": False},
                {"id": 11, "result": [ls_box(10, 20, 25, 50, "car")], "was_cancelled": False},
                {"id": 12, "result": [], "was_cancelled": True},
            ],
            "predictions": [{"result": [ls_box(50, 50, 10, 10, "tree")], "score": 0.9}],
        },
        {"id": 2, "data": {"image": "/data/local-files/?d=photos%2Fb.jpg"},
         "annotations": [{"result": []}]},  # a person said: nothing here
        {"id": 3, "data": {"image": "http://host/c.jpg"}, "annotations": [],
         "predictions": [{"result": [ls_box(5, 5, 10, 10, "tree")]}]},
        {"id": 4, "data": {"image": "s3://bucket/d.jpg"}, "annotations": [{"result": [
            {"type": "polygonlabels", "value": {"points": [[1, 1], [5, 5], [1, 5]], "polygonlabels": ["tree"]}}]}]},
        {"id": 5, "data": {"image": "e.jpg"}, "annotations": [{"result": [
            {**ls_box(0, 0, 10, 10, "car"), "value": {**ls_box(0, 0, 10, 10, "car")["value"], "rotation": 30}}]}]},
    ]
    (tmp_path / "export.json").write_text(json.dumps(tasks))

    report = run(project, tmp_path, "labelstudio")

    assert report["labels"] == {"format": "labelstudio", "created": 2, "unchanged": 0, "kept_as_opinion": 0,
                                "error": 3}
    assert boxes_of("a.jpg") == [("car", 20.0, 20.0, 70.0, 70.0)]
    assert boxes_of("b.jpg") == []
    errors = errors_of(report)
    assert "predictions only" in errors["export.json: task 3 (c.jpg)"]
    assert "'polygonlabels'; a detection project holds rectanglelabels only" in errors["export.json: task 4 (d.jpg)"]
    assert "rotated by 30 degrees" in errors["export.json: task 5 (e.jpg)"]
    assert not Annotation.objects.filter(image__original_name="c.jpg").exists()


def test_label_studio_choices_classify_images(db, tmp_path):
    project = make_project(task_type="classification", classes=("cat", "dog"))
    write_images(tmp_path, [("a.jpg", (40, 30)), ("b.jpg", (40, 30))])
    choice = {"type": "choices", "from_name": "choice", "to_name": "image", "value": {"choices": ["dog"]}}
    tasks = [{"data": {"image": "a.jpg"}, "annotations": [{"result": [choice]}]},
             {"data": {"image": "b.jpg"}, "annotations": [{"result": []}]}]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))

    report = run(project, tmp_path, "labelstudio")

    dog = LabelClass.objects.get(name="dog").pk
    assert image_current_label(Image.objects.get(original_name="a.jpg")) == {"labels": [dog]}
    assert report["labels"]["error"] == 1 and "chooses no class" in errors_of(report)["tasks.json: task #1 (b.jpg)"]


CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><id>7</id><name>trees</name><size>4</size><mode>annotation</mode>
    <labels><label><name>tree</name><color>#33ddff</color><type>rectangle</type><attributes/></label>
    <label><name>car</name><color>#fa3253</color><type>rectangle</type><attributes/></label></labels>
  </task></meta>
  <image id="0" name="folder/a.jpg" width="60" height="40">
    <box label="tree" source="manual" occluded="0" xtl="5.50" ytl="6.00" xbr="25.25" ybr="30.00" z_order="0"/>
    <box label="car" source="manual" occluded="1" xtl="30.00" ytl="1.00" xbr="60.00" ybr="40.00" z_order="0">
      <attribute name="color">red</attribute>
    </box>
  </image>
  <image id="1" name="b.jpg" width="60" height="40"/>
  <image id="2" name="c.jpg" width="60" height="40">
    <polygon label="tree" source="manual" occluded="0" points="1,1;10,10;1,10" z_order="0"/>
  </image>
  <image id="3" name="d.jpg" width="99" height="40">
    <box label="tree" source="manual" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/>
  </image>
</annotations>
"""


def test_cvat_boxes_land_and_shapes_a_project_cannot_hold_refuse_their_image(project, tmp_path):
    write_images(tmp_path, [(f"{c}.jpg", (60, 40)) for c in "abcd"])
    (tmp_path / "annotations.xml").write_text(CVAT_XML)

    report = run(project, tmp_path, "cvat")

    assert report["labels"]["created"] == 1 and report["labels"]["error"] == 3
    assert boxes_of("a.jpg") == [("tree", 5.5, 6.0, 25.25, 30.0), ("car", 30.0, 1.0, 60.0, 40.0)]
    errors = errors_of(report)
    assert "no boxes" in errors["annotations.xml: image 'b.jpg'"]  # unannotated, not "nothing here"
    assert "has a <polygon> (tree)" in errors["annotations.xml: image 'c.jpg'"]
    assert "99x40" in errors["annotations.xml: image 'd.jpg'"]


def test_cvat_video_and_hostile_xml_are_refused(project, tmp_path):
    write_images(tmp_path, [("a.jpg", (60, 40))])
    (tmp_path / "video.xml").write_text('<annotations><version>1.1</version><track id="0" label="car"/></annotations>')
    (tmp_path / "xxe.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY s SYSTEM "file:///etc/passwd">]><annotations>&s;</annotations>')
    report = run(project, tmp_path, "cvat")
    errors = errors_of(report)
    assert "CVAT for video" in errors["video.xml"]
    assert errors["xxe.xml"] == "refused unsafe XML (DTDForbidden)"


def test_yolo_with_classes_txt_as_labelimg_writes_it(project, tmp_path):
    write_images(tmp_path, [("a.jpg", (100, 50))])
    (tmp_path / "classes.txt").write_text("car\ntree\n")
    (tmp_path / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n")
    report = run(project, tmp_path, "yolo")
    assert report["labels"]["created"] == 1, report
    assert boxes_of("a.jpg") == [("tree", 40.0, 15.0, 60.0, 35.0)]


def test_roboflow_darknet_labels_file_names_the_classes(project, tmp_path):
    write_images(tmp_path, [("train/a.jpg", (100, 50))])
    (tmp_path / "train/_darknet.labels").write_text("tree\ncar\n")
    (tmp_path / "train/a.txt").write_text("1 0.5 0.5 0.2 0.4\n")
    report = run(project, tmp_path, "yolo")
    assert report["labels"]["created"] == 1, report
    assert boxes_of("a.jpg")[0][0] == "car"


def coco_with_crowd():
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "categories": [{"id": 1, "name": "tree"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "iscrowd": 0, "area": 400},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 30, 50, 40], "iscrowd": 1, "area": 2000,
             "segmentation": {"counts": [0, 10], "size": [80, 100]}},
        ],
    }


def test_coco_crowd_regions_are_kept_as_ignore_regions_and_not_trained_on(project, tmp_path):
    from training.datasets import dataset_snapshot

    write_images(tmp_path, [("a.jpg", (100, 80))])
    (tmp_path / "instances.json").write_text(json.dumps(coco_with_crowd()))
    run(project, tmp_path, "coco")

    assert boxes_of("a.jpg") == [("tree", 10, 10, 30, 30), ("tree", 40, 30, 90, 70)]
    assert flags_of("a.jpg") == [{}, {"ignore": True}]
    Image.objects.update(split=Split.VALIDATION)
    snapshot = dataset_snapshot(project=project, require_train=False)
    assert [item.boxes for item in snapshot.spec.val] == [((10.0, 10.0, 30.0, 30.0, 0),)]


def test_coco_export_marks_ignore_regions_iscrowd_and_pycocotools_keeps_it(project, tmp_path):
    from pycocotools.coco import COCO

    source = tmp_path / "in"
    write_images(source, [("a.jpg", (100, 80))])
    (source / "instances.json").write_text(json.dumps(coco_with_crowd()))
    run(project, source, "coco")
    export_write(project=project, export_format="coco", sink=DirSink(tmp_path / "out"), include_images=False)

    coco = COCO(str(tmp_path / "out/annotations.json"))
    crowd = {tuple(a["bbox"]): a["iscrowd"] for a in coco.loadAnns(coco.getAnnIds())}
    assert crowd == {(10.0, 10.0, 20.0, 20.0): 0, (40.0, 30.0, 50.0, 40.0): 1}
    assert coco.getAnnIds(iscrowd=False) == [1]  # pycocotools' own filter sees the crowd region

    export_write(project=project, export_format="yolo", sink=DirSink(tmp_path / "yolo"), include_images=False)
    [labels] = (tmp_path / "yolo/labels").rglob("a.txt")
    assert labels.read_text() == "0 0.200000 0.250000 0.200000 0.250000\n"  # the crowd region is left out


VOC_DIFFICULT = """<annotation><filename>a.png</filename><size><width>60</width><height>40</height></size>
<object><name>car</name><difficult>1</difficult>
  <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object>
<object><name>tree</name><difficult>0</difficult>
  <bndbox><xmin>31</xmin><ymin>11</ymin><xmax>60</xmax><ymax>40</ymax></bndbox></object>
</annotation>"""


def test_voc_round_trip_keeps_difficult_and_torchvision_and_supervision_read_the_boxes_exactly(project, tmp_path):
    from torchvision.datasets import VOCDetection

    source = tmp_path / "in"
    write_images(source, [("a.png", (60, 40))])  # not a JPEG: the export converts it
    (source / "a.xml").write_text(VOC_DIFFICULT)
    report = run(project, source, "voc")
    assert report["labels"]["created"] == 1, report
    assert boxes_of("a.png") == [("car", 0, 0, 20, 30), ("tree", 30, 10, 60, 40)]
    assert flags_of("a.png") == [{"difficult": True}, {}]

    Image.objects.update(split=Split.TRAIN)
    out = tmp_path / "VOCdevkit/VOC2012"
    export_write(project=project, export_format="voc", sink=DirSink(out))
    dataset = VOCDetection(str(tmp_path), year="2012", image_set="train", download=False)
    picture, target = dataset[0]
    assert picture.size == (60, 40)
    with PILImage.open(out / "JPEGImages/a.jpg") as written:
        assert written.format == "JPEG"
    objects = target["annotation"]["object"]
    assert [(o["name"], o["difficult"], o["bndbox"]) for o in objects] == [
        ("car", "1", {"xmin": "1", "ymin": "1", "xmax": "20", "ymax": "30"}),
        ("tree", "0", {"xmin": "31", "ymin": "11", "xmax": "60", "ymax": "40"}),
    ]
    assert target["annotation"]["filename"] == "a.jpg"

    import supervision as sv  # a second, independent VOC reader: 1-based corners become pixel edges

    read = sv.DetectionDataset.from_pascal_voc(images_directory_path=str(out / "JPEGImages"),
                                               annotations_directory_path=str(out / "Annotations"))
    [(path, _image, detections)] = list(read)
    assert path.endswith("a.jpg")
    assert [(read.classes[c], tuple(box)) for c, box in zip(detections.class_id, detections.xyxy.tolist(),
                                                           strict=True)] == [
        ("car", (0.0, 0.0, 20.0, 30.0)), ("tree", (30.0, 10.0, 60.0, 40.0))]

    fresh = make_project(classes=("tree", "car"))
    again = import_run(project=fresh, files=list(folder_files(str(out))), label_format="voc")
    assert again["labels"]["created"] == 1, again
    payload = Annotation.objects.get(project=fresh).payload
    assert [(b["x1"], b["y1"], b["x2"], b["y2"], b.get("difficult", False)) for b in payload["boxes"]] == [
        (0, 0, 20, 30, True), (30, 10, 60, 40, False)]


def test_an_import_never_overwrites_a_persons_label_unless_asked(project, tmp_path):
    write_images(tmp_path, [("a.jpg", (60, 40))])
    car = LabelClass.objects.get(name="car").pk
    run(project, tmp_path, "")  # the image alone
    image = Image.objects.get(original_name="a.jpg")
    person = {"boxes": [{"x1": 1.0, "y1": 1.0, "x2": 9.0, "y2": 9.0, "label": car}]}
    Annotation.objects.create(project=project, image=image, kind="correct", source=AnnotationSource.HUMAN,
                              payload=person)
    (tmp_path / "a.xml").write_text("<annotation><filename>a.jpg</filename></annotation>")  # empty

    report = run(project, tmp_path, "voc")
    assert report["labels"] == {"format": "voc", "created": 0, "unchanged": 0, "kept_as_opinion": 1, "error": 0}
    assert image_current_label(image) == person
    opinion = Annotation.objects.get(source=AnnotationSource.IMPORT)
    assert opinion.state == AnnotationState.EXTRA_OPINION and opinion.payload == {"boxes": []}
    assert run(project, tmp_path, "voc")["labels"]["unchanged"] == 1  # kept once, not once per import

    replaced = run(project, tmp_path, "voc", replace=True)
    assert replaced["labels"]["created"] == 1
    assert image_current_label(image) == {"boxes": []}


def test_an_import_may_replace_an_earlier_import_without_asking(project, tmp_path):
    write_images(tmp_path, [("a.jpg", (60, 40))])
    (tmp_path / "a.xml").write_text("<annotation><filename>a.jpg</filename></annotation>")
    run(project, tmp_path, "voc")
    (tmp_path / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><object><name>car</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")
    report = run(project, tmp_path, "voc")
    assert report["labels"]["created"] == 1 and report["labels"]["kept_as_opinion"] == 0
    assert len(image_current_label(Image.objects.get(original_name="a.jpg"))["boxes"]) == 1


# Round trips: written by VISION, read back by VISION and by a parse written from each
# format's published description (Label Studio's "JSON" export, CVAT for images 1.1).

def exported_project(db, tmp_path, task_type="detection"):
    from tests.labeling.test_export_formats import write_coco_dataset

    source = tmp_path / "source"
    source.mkdir()
    document = write_coco_dataset(source)
    project = make_project(classes=("tree", "car"))
    import_run(project=project, files=list(folder_files(str(source))), label_format="coco")
    return project, document


def expected_pixels(document):
    names = {c["id"]: c["name"] for c in document["categories"]}
    files = {i["id"]: i["file_name"] for i in document["images"]}
    out = {name: [] for name in files.values()}
    for a in document["annotations"]:
        x, y, w, h = a["bbox"]
        out[files[a["image_id"]]].append((names[a["category_id"]], x, y, x + w, y + h))
    return {k: sorted(v) for k, v in out.items()}


def assert_same_boxes(got, want):
    assert got.keys() == want.keys()
    for name in want:
        assert [b[0] for b in sorted(got[name])] == [b[0] for b in want[name]], name
        for g, w in zip(sorted(got[name]), want[name]):
            assert g[1:] == pytest.approx(w[1:], abs=1e-6), name


def test_label_studio_export_reads_back_in_vision_and_by_its_published_structure(db, tmp_path):
    project, document = exported_project(db, tmp_path)
    out = tmp_path / "ls"
    export_write(project=project, export_format="labelstudio", sink=DirSink(out))

    tasks = json.loads((out / "tasks.json").read_text())
    config = ET.fromstring((out / "config.xml").read_text())
    assert config.find("RectangleLabels").get("name") == "label"
    assert {label.get("value") for label in config.iter("Label")} == {"tree", "car"}
    read = {}
    for task in tasks:
        assert set(task) >= {"data", "annotations", "predictions"}
        name = task["data"]["image"].rsplit("/", 1)[-1]
        assert (out / task["data"]["image"]).is_file()
        boxes = read.setdefault(name, [])
        for region in task["annotations"][0]["result"]:
            assert region["type"] == "rectanglelabels"
            assert (region["from_name"], region["to_name"]) == ("label", "image")
            v, w, h = region["value"], region["original_width"], region["original_height"]
            boxes.append((v["rectanglelabels"][0], v["x"] * w / 100, v["y"] * h / 100,
                          (v["x"] + v["width"]) * w / 100, (v["y"] + v["height"]) * h / 100))
    assert_same_boxes(read, expected_pixels(document))

    fresh = make_project(classes=("tree", "car"))
    report = import_run(project=fresh, files=list(folder_files(str(out))), label_format="labelstudio")
    assert report["labels"]["created"] == 12 and report["labels"]["error"] == 0, report
    names = dict(LabelClass.objects.filter(project=fresh).values_list("id", "name"))
    again = {a.image.original_name: [(names[b["label"]], b["x1"], b["y1"], b["x2"], b["y2"])
                                     for b in a.payload["boxes"]]
             for a in Annotation.objects.filter(project=fresh).select_related("image")}
    assert_same_boxes(again, expected_pixels(document))


def test_cvat_export_reads_back_in_vision_and_by_its_published_structure(db, tmp_path):
    project, document = exported_project(db, tmp_path)
    out = tmp_path / "cvat"
    export_write(project=project, export_format="cvat", sink=DirSink(out))

    root = ET.parse(out / "annotations.xml").getroot()
    assert root.tag == "annotations" and root.findtext("version") == "1.1"
    assert {n.text for n in root.findall("meta/task/labels/label/name")} == {"tree", "car"}
    read = {}
    for image in root.findall("image"):
        assert (out / image.get("name")).is_file()
        assert int(image.get("width")) > 0 and image.get("id").isdigit()
        read[image.get("name").rsplit("/", 1)[-1]] = [
            (b.get("label"), *(float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")))
            for b in image.findall("box")
        ]
    assert_same_boxes(read, expected_pixels(document))

    fresh = make_project(classes=("tree", "car"))
    report = import_run(project=fresh, files=list(folder_files(str(out))), label_format="cvat")
    empty = sum(1 for boxes in expected_pixels(document).values() if not boxes)
    assert report["labels"]["created"] == 12 - empty and report["labels"]["error"] == empty, report


def test_box_flags_must_be_booleans_and_are_kept_only_when_set():
    from labeling.payloads import PayloadError, validate_payload

    box = {"x1": 1, "y1": 1, "x2": 5, "y2": 5, "label": 3}
    clean = validate_payload({"boxes": [{**box, "ignore": True, "difficult": False}]},
                             task_type="detection", class_ids=[3], width=10, height=10)
    assert clean == {"boxes": [{"x1": 1.0, "y1": 1.0, "x2": 5.0, "y2": 5.0, "label": 3, "ignore": True}]}
    with pytest.raises(PayloadError, match=r"boxes\[0\]: ignore must be true or false, got 'yes'"):
        validate_payload({"boxes": [{**box, "ignore": "yes"}]}, task_type="detection", class_ids=[3],
                         width=10, height=10)


def test_label_studio_export_carries_the_deployed_models_prediction(project, tmp_path):
    from core.models import ModelVersion, Prediction

    write_images(tmp_path, [("a.jpg", (200, 100))])
    (tmp_path / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><object><name>car</name>"
        "<bndbox><xmin>11</xmin><ymin>21</ymin><xmax>60</xmax><ymax>70</ymax></bndbox></object></annotation>")
    run(project, tmp_path, "voc")
    car = LabelClass.objects.get(name="car").pk
    version = ModelVersion.objects.create(project=project, number=1, backend="yolo", is_deployed=True,
                                          status="deployed", class_ids=[car])
    Prediction.objects.create(image=Image.objects.get(), model_version=version, uncertainty=0.25, payload={
        "boxes": [{"x1": 0.0, "y1": 0.0, "x2": 100.0, "y2": 50.0, "label": car, "score": 0.75}]})
    export_write(project=project, export_format="labelstudio", sink=DirSink(tmp_path / "out"), include_images=False)

    [task] = json.loads((tmp_path / "out/tasks.json").read_text())
    [annotated] = task["annotations"][0]["result"]
    assert annotated["value"]["x"] == pytest.approx(5.0) and annotated["value"]["rectanglelabels"] == ["car"]
    [prediction] = task["predictions"]
    assert prediction["score"] == 0.75 and prediction["model_version"] == str(version.pk)
    assert prediction["result"][0]["value"] == {"x": 0.0, "y": 0.0, "width": 50.0, "height": 50.0,
                                                "rotation": 0, "rectanglelabels": ["car"]}
