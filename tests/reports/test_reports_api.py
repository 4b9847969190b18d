"""Reports end to end: annotations land, the aggregates follow, the API serves the numbers
(hand-checked), as JSON and CSV, to leads only."""
import logging
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from core.models import Backend, Image, LabelClass, ModelVersion, Prediction, Project, TaskType
from labeling.models import Annotation, AnnotationKind, AnnotationSource, Membership, Role, Task
from ml.metrics import detection_metrics
from reports.aggregates import report_aggregates_rebuild, report_aggregates_record
from reports.models import (
    ReportAgreementPair,
    ReportAnnotationMark,
    ReportDailyCounts,
    ReportFlagReason,
    ReportLabeledImage,
)

pytestmark = pytest.mark.django_db


def box(x1, y1, x2, y2, label, **extra):
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": label, **extra}


def make_images(project, count, start=0):
    return Image.objects.bulk_create([
        Image(project=project, file=f"img{start + i}.png", original_name=f"img{start + i}.png",
              sha256=f"{project.pk}-{start + i}", width=200, height=200)
        for i in range(count)
    ])


@pytest.fixture
def team(django_user_model):
    project = Project.objects.create(name="trees", task_type=TaskType.DETECTION)
    # No passwords (hashing is slow); the API client authenticates directly.
    users = {name: django_user_model.objects.create(username=name) for name in ("lead", "alice", "bob", "stranger")}
    Membership.objects.create(project=project, user=users["lead"], role=Role.LEAD)
    for name in ("alice", "bob"):
        Membership.objects.create(project=project, user=users[name], role=Role.ANNOTATOR)
    return project, users


def annotate(project, image, author, kind, payload=None, prediction=None, random_pick=False, **fields):
    task = Task.objects.create(project=project, image=image, slot=Task.objects.filter(image=image).count(),
                               is_random_pick=random_pick)
    return Annotation.objects.create(project=project, image=image, task=task, author=author, kind=kind,
                                     payload=payload or {}, prediction=prediction, **fields)


PREDICTED = [box(0, 0, 10, 10, 0, score=0.9), box(20, 20, 30, 30, 0, score=0.8),
             box(50, 50, 60, 60, 1, score=0.7), box(80, 80, 90, 90, 0, score=0.1)]
CORRECTED = [box(0, 0, 10, 10, 0), box(20, 20, 30, 32, 1), box(100, 100, 110, 110, 0)]


@pytest.fixture
def detection_work(team, django_capture_on_commit_callbacks):
    """alice corrects img0's pre-label (hand-checked: 1 added, 1 deleted, 1 moved with IoU
    100/120, 1 class flip); bob accepts it (random arm); alice flags img1, bob skips img2;
    img3 arrives labeled by import; img4 is untouched."""
    project, users = team
    c0 = LabelClass.objects.create(project=project, name="tree")
    c1 = LabelClass.objects.create(project=project, name="shrub")
    predicted = [{**b, "label": [c0.pk, c1.pk][b["label"]]} for b in PREDICTED]
    corrected = [{**b, "label": [c0.pk, c1.pk][b["label"]]} for b in CORRECTED]
    images = make_images(project, 5)
    version = ModelVersion.objects.create(project=project, number=1, backend=Backend.YOLO,
                                          class_ids=[c0.pk, c1.pk])
    prediction = Prediction.objects.create(image=images[0], model_version=version, payload={"boxes": predicted})
    shown = [{k: v for k, v in b.items() if k != "score"} for b in predicted[:3]]
    with django_capture_on_commit_callbacks(execute=True):
        annotate(project, images[0], users["alice"], AnnotationKind.CORRECT, {"boxes": corrected},
                 prediction, time_spent_ms=30_000)
        annotate(project, images[0], users["bob"], AnnotationKind.ACCEPT, {"boxes": shown}, prediction,
                 random_pick=True, time_spent_ms=10_000)
        annotate(project, images[1], users["alice"], AnnotationKind.FLAG, flag_reason="  too   blurry ",
                 time_spent_ms=5_000)
        annotate(project, images[2], users["bob"], AnnotationKind.SKIP, time_spent_ms=2_000)
        Annotation.objects.create(project=project, image=images[3], author=None, kind=AnnotationKind.CORRECT,
                                  source=AnnotationSource.IMPORT, payload={"boxes": shown})
    return project, users, version


def get_report(api_client, user, project, name, **params):
    api_client.force_authenticate(user)
    return api_client.get(f"/api/projects/{project.pk}/reports/{name}/", params)


def test_prelabel_quality_report_matches_the_hand_checked_edits(api_client, detection_work):
    project, users, version = detection_work
    response = get_report(api_client, users["lead"], project, "prelabel-quality")
    assert response.status_code == 200
    [row] = response.json()["tables"]["by_version"]
    assert row["version"] == 1
    assert (row["prelabeled"], row["accepted_unchanged"], row["acceptance_rate"]) == (2, 1, 0.5)
    assert (row["boxes_added"], row["boxes_deleted"], row["boxes_moved"], row["class_flips"]) == (1, 1, 1, 1)
    # alice's two matched pairs: IoU 1 and 100/120.
    assert row["mean_iou_shift"] == pytest.approx((1 - 100 / 120) / 2, abs=1e-4)
    by_annotator = {r["annotator"]: r for r in response.json()["tables"]["by_annotator"]}
    assert by_annotator["alice"]["acceptance_rate"] == 0.0
    assert by_annotator["bob"]["acceptance_rate"] == 1.0


def test_team_report_counts_submissions_and_time(api_client, detection_work):
    project, users, _ = detection_work
    body = get_report(api_client, users["lead"], project, "team").json()
    rows = {r["annotator"]: r for r in body["tables"]["by_annotator"]}
    assert set(rows) == {"alice", "bob"}  # the import is nobody's work
    alice, bob = rows["alice"], rows["bob"]
    assert (alice["submissions"], alice["labeled"], alice["flagged"]) == (2, 1, 1)
    assert alice["seconds_per_image"] == 17.5  # 35 s over 2 images
    assert alice["images_per_hour"] == pytest.approx(2 / (35 / 3600), abs=0.1)
    assert (bob["submissions"], bob["skipped"], bob["seconds_per_image"]) == (2, 1, 6.0)
    [today_alice] = [r for r in body["tables"]["by_annotator_day"] if r["annotator"] == "alice"]
    assert today_alice["day"] == timezone.now().date().isoformat()
    [today] = body["tables"]["by_day"]
    assert (today["submissions"], today["hours"]) == (4, round(47 / 3600, 3))


def test_agreement_report_scores_box_f1_between_two_annotators(api_client, detection_work):
    project, users, _ = detection_work
    body = get_report(api_client, users["lead"], project, "agreement").json()
    [pair] = body["tables"]["pairs"]
    assert {pair["annotator_a"], pair["annotator_b"]} == {"alice", "bob"}
    # Same class and IoU >= 0.5: only the untouched box; F1 = 2 * 1 / (3 + 3).
    assert pair["shared_images"] == 1
    assert pair["box_f1"] == pytest.approx(1 / 3, abs=1e-4)
    assert "1 image pairs" in body["sentence"]


def test_flags_report_groups_normalised_reasons(api_client, detection_work):
    project, users, _ = detection_work
    body = get_report(api_client, users["lead"], project, "flags").json()
    assert body["tables"]["reasons"] == [{"reason": "too blurry", "count": 1}]
    assert body["tables"]["by_annotator"] == [{"annotator": "alice", "flagged": 1}]


def test_queue_report_counts_first_labels_including_imports(api_client, detection_work):
    project, users, _ = detection_work
    body = get_report(api_client, users["lead"], project, "queue").json()
    # img0 (labeled by alice, then bob: one image) and img3 (import); 5 images in all.
    assert (body["images"], body["labeled"], body["remaining"]) == (5, 2, 3)
    [day] = body["tables"]["burn_down"]
    assert (day["labeled"], day["imported"], day["remaining"]) == (1, 1, 3)
    assert body["completion"]["status"] == "insufficient_data"
    assert body["completion"]["expected_date"] is None


def test_learning_curve_reports_acceptance_per_queue_arm(api_client, detection_work):
    project, users, _ = detection_work
    body = get_report(api_client, users["lead"], project, "learning-curve").json()
    arms = {r["arm"]: r for r in body["tables"]["arms"]}
    assert arms["random"] == {"version": 1, "arm": "random", "prelabeled": 1, "acceptance_rate": 1.0}
    assert arms["strategy"]["acceptance_rate"] == 0.0


def test_recording_an_annotation_twice_counts_it_once(detection_work):
    project, *_ = detection_work
    before = list(ReportDailyCounts.objects.filter(project=project).values().order_by("pk"))
    for annotation_id in Annotation.objects.filter(project=project).values_list("pk", flat=True):
        assert report_aggregates_record(annotation_id=annotation_id) is False
    assert list(ReportDailyCounts.objects.filter(project=project).values().order_by("pk")) == before


def snapshot(project):
    def rows(model, *fields):
        return sorted(model.objects.filter(project=project).values_list(*fields))

    return (
        rows(ReportDailyCounts, "day", "annotator_id", "model_version_id", "arm", "submissions", "labeled",
             "rejected", "skipped", "flagged", "time_spent_ms", "images_labeled", "images_imported", "prelabeled",
             "accepted_unchanged", "boxes_added", "boxes_deleted", "boxes_moved", "boxes_matched",
             "class_flips"),
        rows(ReportAgreementPair, "annotator_a", "annotator_b", "label_a", "label_b", "comparisons", "score_sum"),
        rows(ReportFlagReason, "reason", "count"),
        rows(ReportLabeledImage, "image_id", "day"),
        rows(ReportAnnotationMark, "annotation_id", "author_id", "first_label_by_author"),
    )


def test_rebuild_reproduces_what_live_recording_built(detection_work):
    project, *_ = detection_work
    live = snapshot(project)
    assert live[0], "live recording built nothing"
    assert report_aggregates_rebuild(project=project) == 5
    assert snapshot(project) == live


def test_a_rejected_label_counts_for_its_author_once_and_a_rebuild_agrees(api_client, detection_work):
    project, users, _ = detection_work
    bobs_accept = Annotation.objects.get(author=users["bob"], kind=AnnotationKind.ACCEPT)
    alices_flag = Annotation.objects.get(author=users["alice"], kind=AnnotationKind.FLAG)
    api_client.force_authenticate(users["lead"])
    for annotation in (bobs_accept, alices_flag):  # a rejected flag is no rejected label
        response = api_client.post(f"/api/annotations/{annotation.pk}/review/", {"decision": "reject"},
                                   format="json")
        assert response.status_code == 200
    rows = {r["annotator"]: r for r in get_report(api_client, users["lead"], project, "team").json()
            ["tables"]["by_annotator"]}
    assert (rows["bob"]["labeled"], rows["bob"]["rejected"]) == (1, 1)
    assert rows["alice"]["rejected"] == 0
    # Counted in the row bob's label was counted in: his pre-labelled accept on the random arm.
    assert ReportDailyCounts.objects.get(annotator_id=users["bob"].pk, rejected=1).arm == "random"
    live = snapshot(project)
    report_aggregates_rebuild(project=project)
    assert snapshot(project) == live


def test_a_rejection_before_the_label_was_counted_is_counted_by_its_recording(team):
    from labeling.review import annotation_review

    project, users = team
    [image] = make_images(project, 1)
    label = annotate(project, image, users["alice"], AnnotationKind.CORRECT, {"boxes": []})  # not recorded yet
    annotation_review(annotation_id=label.pk, reviewer=users["lead"], decision="reject")
    assert not ReportDailyCounts.objects.filter(project=project).exists()
    assert report_aggregates_record(annotation_id=label.pk) is True
    assert ReportDailyCounts.objects.get(project=project, annotator_id=users["alice"].pk).rejected == 1


def test_past_rejections_are_counted_when_the_counter_arrives(detection_work):
    from importlib import import_module

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    project, users, _ = detection_work
    bobs_accept = Annotation.objects.get(author=users["bob"], kind=AnnotationKind.ACCEPT)
    Annotation.objects.filter(pk=bobs_accept.pk).update(review_status="rejected")  # rejected before the counter
    migration = import_module("labeling.migrations.0007_report_rejected")
    # the models as that migration saw them (the tables have not moved since)
    apps = MigrationLoader(connection).project_state(("labeling", "0007_report_rejected")).apps
    migration.count_past_rejections(apps, None)
    assert ReportDailyCounts.objects.get(annotator_id=users["bob"].pk, rejected=1).arm == "random"
    live = snapshot(project)
    report_aggregates_rebuild(project=project)
    assert snapshot(project) == live


def test_a_failing_report_update_never_fails_the_submit(team, monkeypatch, caplog, django_capture_on_commit_callbacks):
    project, users = team
    [image] = make_images(project, 1)

    def broken(**kwargs):
        raise RuntimeError("aggregates unavailable")

    monkeypatch.setattr("reports.aggregates.report_aggregates_record", broken)
    with django_capture_on_commit_callbacks(execute=True):
        annotation = annotate(project, image, users["alice"], AnnotationKind.SKIP)
    assert Annotation.objects.filter(pk=annotation.pk).exists()
    assert "could not record annotation" in caplog.text


@pytest.mark.parametrize(("who", "status"), [("alice", 403), ("stranger", 404)])
def test_reports_are_for_leads(api_client, team, who, status):
    project, users = team
    assert get_report(api_client, users[who], project, "team").status_code == status


def test_every_report_answers_for_an_empty_project(api_client, team):
    project, users = team
    for name in ("accuracy", "learning-curve", "prelabel-quality", "team", "agreement", "flags", "queue"):
        response = get_report(api_client, users["lead"], project, name)
        assert response.status_code == 200, name
        assert "tables" in response.json()
    assert get_report(api_client, users["lead"], project, "nonsense").status_code == 404


def test_csv_download_serves_the_chosen_table(api_client, detection_work):
    project, users, _ = detection_work
    response = get_report(api_client, users["lead"], project, "team", format="csv", table="by_annotator")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="project-{project.pk}-team-by_annotator.csv"' in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("annotator,submissions,labeled,rejected,skipped,flagged,hours")
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["alice", "bob"]
    bad = get_report(api_client, users["lead"], project, "team", format="csv", table="nope")
    assert bad.status_code == 400 and "by_day" in bad.content.decode()


def test_classification_agreement_gives_cohens_kappa(api_client, team):
    project, users = team
    project.task_type = TaskType.CLASSIFICATION
    project.save()
    a, b = (LabelClass.objects.create(project=project, name=n).pk for n in ("cat", "dog"))
    images = make_images(project, 4)
    alice, bob = [a, a, b, b], [a, b, b, b]
    for image, la, lb in zip(images, alice, bob):
        annotate(project, image, users["alice"], AnnotationKind.CORRECT, {"labels": [la]})
        annotate(project, image, users["bob"], AnnotationKind.CORRECT, {"labels": [lb]})
    report_aggregates_rebuild(project=project)
    [pair] = get_report(api_client, users["lead"], project, "agreement").json()["tables"]["pairs"]
    # p_o = 3/4; marginals alice (1/2, 1/2), bob (1/4, 3/4): p_e = 1/2; kappa = 1/2.
    assert pair["percent_agreement"] == 0.75
    assert pair["cohen_kappa"] == pytest.approx(0.5)


def test_queue_forecast_from_steady_daily_work(api_client, team):
    project, users = team
    images = make_images(project, 40)
    today = timezone.now()
    for day in range(10):  # 2 images a day for the 10 days before today
        for image in images[2 * day: 2 * day + 2]:
            annotation = annotate(project, image, users["alice"], AnnotationKind.CORRECT, {"boxes": []})
            Annotation.objects.filter(pk=annotation.pk).update(created_at=today - timedelta(days=10 - day))
    report_aggregates_rebuild(project=project)
    body = get_report(api_client, users["lead"], project, "queue").json()
    assert (body["labeled"], body["remaining"]) == (20, 20)
    completion = body["completion"]
    # 20 remaining at 2 a day: the 10th day from today.
    assert completion["status"] == "ok"
    assert completion["expected_date"] == (today.date() + timedelta(days=9)).isoformat()
    assert "about 2 images a day, the remaining 20 images" in body["sentence"]
    assert [d["remaining"] for d in body["tables"]["burn_down"]] == list(range(38, 19, -2))


# --- accuracy numbers against pycocotools ----------------------------------------------


def coco_eval(gts, preds, num_classes):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, detections = [], [], []
    for i, (gt, pred) in enumerate(zip(gts, preds)):
        images.append({"id": i, "width": 200, "height": 200})
        for (x1, y1, x2, y2), c in zip(gt["boxes"], gt["classes"]):
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(c), "iscrowd": 0,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
        for (x1, y1, x2, y2), c, s in zip(pred["boxes"], pred["classes"], pred["scores"]):
            detections.append({"image_id": i, "category_id": int(c), "bbox": [x1, y1, x2 - x1, y2 - y1],
                               "score": float(s)})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": c} for c in range(num_classes)]}
    coco.createIndex()
    evaluator = COCOeval(coco, coco.loadRes(detections), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator


def test_accuracy_report_map_agrees_with_pycocotools(api_client, team):
    project, users = team
    classes = [LabelClass.objects.create(project=project, name=n).pk for n in ("tree", "shrub")]
    rng = np.random.default_rng(7)
    gts, preds = [], []
    for _ in range(6):
        xy = rng.uniform(0, 150, size=(4, 2))
        gt_boxes = np.hstack([xy, xy + rng.uniform(10, 40, size=(4, 2))]).round(1)
        gt_classes = rng.integers(0, 2, 4)
        pred_boxes = (gt_boxes + rng.normal(0, 4, gt_boxes.shape)).round(1)
        pred_boxes[:, 2:] = np.maximum(pred_boxes[:, 2:], pred_boxes[:, :2] + 1)
        pred_classes = np.where(rng.random(4) < 0.8, gt_classes, 1 - gt_classes)
        gts.append({"boxes": gt_boxes.tolist(), "classes": gt_classes.tolist()})
        preds.append({"boxes": pred_boxes.tolist(), "classes": pred_classes.tolist(),
                      "scores": rng.uniform(0.05, 1, 4).round(3).tolist()})
    metrics = detection_metrics(preds, gts, 2)
    ModelVersion.objects.create(project=project, number=1, backend=Backend.YOLO, class_ids=classes,
                                metrics=metrics, primary_metric=metrics["map50_95"], dataset_size=100,
                                validation_size=6)
    body = get_report(api_client, users["lead"], project, "accuracy").json()
    [version] = body["tables"]["versions"]
    evaluator = coco_eval(gts, preds, 2)
    assert version["map50_95"] == pytest.approx(evaluator.stats[0], abs=1e-9)
    assert version["map50"] == pytest.approx(evaluator.stats[1], abs=1e-9)
    per_class = {r["class_name"]: r for r in body["tables"]["per_class"]}
    for index, name in enumerate(("tree", "shrub")):
        precision = evaluator.eval["precision"][:, :, index, 0, -1]  # all areas, maxDets 100
        assert per_class[name]["ap50_95"] == pytest.approx(precision[precision > -1].mean(), abs=1e-9)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres  # the rebuild lock is a PostgreSQL advisory lock; SQLite serialises writers itself
def test_recording_during_a_rebuild_stands_aside_and_the_rebuild_counts_it(team, caplog):
    import threading

    from django.db import connection, transaction

    from reports.aggregates import AGGREGATES_LOCK, RebuildInProgress, report_aggregates_record_safely

    caplog.set_level(logging.INFO, logger="reports.aggregates")
    project, users = team
    [image] = make_images(project, 1)
    annotation = annotate(project, image, users["alice"], AnnotationKind.CORRECT, {"boxes": []})
    ReportAnnotationMark.objects.all().delete()
    ReportDailyCounts.objects.all().delete()
    ReportLabeledImage.objects.all().delete()
    locked, release = threading.Event(), threading.Event()

    def rebuild_holding_the_lock():
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [AGGREGATES_LOCK, project.pk])
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=rebuild_holding_the_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with pytest.raises(RebuildInProgress):
            report_aggregates_record(annotation_id=annotation.pk)
        report_aggregates_record_safely(annotation.pk)  # stands aside without an error
        assert "left to the running rebuild" in caplog.text
        assert not ReportAnnotationMark.objects.filter(annotation_id=annotation.pk).exists()
    finally:
        release.set()
        holder.join()
    assert report_aggregates_rebuild(project=project) == 1
    assert ReportDailyCounts.objects.get(project=project).labeled == 1


def test_a_submit_through_the_queue_lands_in_the_reports_once(api_client, team, django_capture_on_commit_callbacks):
    from labeling.queue.services import annotation_submit

    project, users = team
    tree = LabelClass.objects.create(project=project, name="tree")
    [image] = make_images(project, 1)
    version = ModelVersion.objects.create(project=project, number=1, backend=Backend.YOLO, class_ids=[tree.pk],
                                          is_deployed=True, status="deployed")
    Prediction.objects.create(image=image, model_version=version,
                              payload={"boxes": [box(10, 10, 50, 50, tree.pk, score=0.8)]})
    task = Task.objects.select_related("project", "image").get(
        pk=Task.objects.create(project=project, image=image).pk)
    for _ in range(2):  # a retried submit replays the first
        with django_capture_on_commit_callbacks(execute=True):
            annotation_submit(task=task, user=users["alice"], kind=AnnotationKind.ACCEPT,
                              idempotency_key="k1", time_spent_ms=4_000)
    [row] = get_report(api_client, users["lead"], project, "prelabel-quality").json()["tables"]["by_version"]
    assert (row["prelabeled"], row["accepted_unchanged"]) == (1, 1)
    queue = get_report(api_client, users["lead"], project, "queue").json()
    assert (queue["labeled"], queue["remaining"]) == (1, 0)


def test_learning_curve_compares_the_queue_arms_and_says_when_each_reached_the_target(api_client):
    from tests.labeling.test_queue import make_project, member

    project = make_project(TaskType.CLASSIFICATION, classes=("a", "b"), target_metric=0.8)
    lead = member(project, role=Role.LEAD)
    arms = [(10, 0.5, 0.6), (20, 0.7, 0.85), (30, 0.82, 0.9)]
    for number, (labels, random_f1, strategy_f1) in enumerate(arms, start=1):
        ModelVersion.objects.create(project=project, number=number, backend=Backend.LINEAR, primary_metric=0.9,
                                    metrics={"arms": {"labels": labels, "random": random_f1, "strategy": strategy_f1}})
    ModelVersion.objects.create(project=project, number=4, backend=Backend.LINEAR, primary_metric=0.5,
                                metrics={"arms": {"labels": 5, "random": None, "strategy": None}})
    body = get_report(api_client, lead, project, "learning-curve").json()
    assert [row["labels"] for row in body["tables"]["arm_curve"]] == [10, 20, 30]
    assert body["tables"]["arm_labels_to_target"] == [
        {"arm": "strategy", "target": 0.8, "labels_to_target": 20},
        {"arm": "random", "target": 0.8, "labels_to_target": 30},
    ]
    assert {row["backend"] for row in body["tables"]["versions"]} == {"linear"}
