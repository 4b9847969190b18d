"""A lead's day in Chromium: browse the project's images, filter them, open one in the
editor and label it, fix a label in place and accept the rest in bulk on the review page,
then read the confusion matrix and per-class precision/recall of the deployed model, and
each run's per-epoch training curves."""
import pytest

from core.models import ModelVersion
from labeling.models import Annotation, AnnotationKind, ReviewStatus, Role, Task, TaskStatus
from labeling.selectors import image_current_label
from training.models import JobStatus, TrainingRun

from .conftest import ARTIFACTS, sign_in, wait_for_js
from .factories import classification_scene, detection_scene

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _label(scene, image, author, class_name):
    task = Task.objects.filter(image=image, status=TaskStatus.OPEN).first()
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.DONE, completed_by=author)
    return Annotation.objects.create(project=scene.project, image=image, task=task, author=author,
                                     kind=AnnotationKind.ACCEPT, payload={"labels": [scene.classes[class_name].pk]},
                                     prediction=scene.predictions[image.pk])


def test_a_leads_day(page, make_user):
    lead, ann, bob = make_user("lea"), make_user("ann"), make_user("bob")
    scene = classification_scene(members={lead: Role.LEAD, ann: Role.ANNOTATOR, bob: Role.ANNOTATOR}, images=6)
    dog = scene.classes["dog"]
    images = sorted(scene.predictions, key=int)
    images = [scene.predictions[pk].image for pk in images]
    by_ann = [_label(scene, image, ann, "cat") for image in images[:3]]
    by_bob = _label(scene, images[3], bob, "cat")
    ModelVersion.objects.filter(pk=scene.version.pk).update(primary_metric=0.72, metrics={
        "primary_metric": "macro_f1", "macro_f1": 0.72, "accuracy": 0.75,
        "confusion_matrix": [[5, 1], [2, 4]],
        "per_class": [
            {"class_index": 0, "precision": 0.714, "recall": 0.833, "f1": 0.769, "support": 6},
            {"class_index": 1, "precision": 0.8, "recall": 0.667, "f1": 0.727, "support": 6},
        ],
    })
    TrainingRun.objects.create(project=scene.project, status=JobStatus.SUCCEEDED, total_epochs=3, epoch=3, history=[
        {"epoch": 1, "loss": 1.2, "metric": 0.4}, {"epoch": 2, "loss": 0.8, "metric": 0.6},
        {"epoch": 3, "loss": 0.5, "metric": 0.72}])
    pid = scene.project.pk
    sign_in(page, "lea")

    # Browse: every image, with its label, labeler and status.
    page.goto(f"/projects/{pid}/images/")
    tiles = page.locator("#image-grid .image-tile")
    tiles.nth(5).wait_for()
    assert tiles.count() == 6
    assert page.inner_text("#browser-count") == "6 images match"
    first = page.locator(f".image-tile[data-image-id='{images[0].pk}']")
    assert "cat" in first.inner_text() and "by ann" in first.inner_text()
    assert page.locator("nav a", has_text="Images").count() == 1

    # Filter: by annotator, by status, by name.
    page.select_option("select[name=annotator]", "ann")
    page.click("#browser-filters button[type=submit]")
    wait_for_js(page, "document.querySelector('#browser-count').textContent === '3 images match'")
    assert sorted(int(t.get_attribute("data-image-id")) for t in tiles.all()) == [i.pk for i in images[:3]]
    page.select_option("select[name=annotator]", "")
    page.select_option("select[name=status]", "unlabeled")
    page.click("#browser-filters button[type=submit]")
    wait_for_js(page, "document.querySelector('#browser-count').textContent === '2 images match'")
    assert "status=unlabeled" in page.url
    page.select_option("select[name=status]", "")
    page.fill("input[name=q]", images[4].original_name)
    page.click("#browser-filters button[type=submit]")
    wait_for_js(page, "document.querySelector('#browser-count').textContent === '1 image match'")

    # Open the unlabeled image in the editor and label it "dog".
    page.click(f".image-tile[data-image-id='{images[4].pk}']")
    page.wait_for_url(f"**/projects/{pid}/images/{images[4].pk}/")
    page.locator("#image-edit[data-loaded=true]").wait_for()
    assert "Not labeled yet" in page.inner_text("#label-note")
    page.click(f"#class-list .class-row[data-class-id='{dog.pk}']")
    page.click("#save")
    wait_for_js(page, "document.querySelector('#save-state').textContent === 'Label saved'")
    assert image_current_label(images[4]) == {"labels": [dog.pk]}
    assert not Task.objects.filter(image=images[4], status=TaskStatus.OPEN).exists()
    assert "Current label by lea" in page.inner_text("#label-note")

    # Review: fix one label in place, then accept the rest in bulk, in one request.
    page.goto(f"/projects/{pid}/review/")
    cards = page.locator("#review-list .review-card")
    cards.nth(3).wait_for()
    assert cards.count() == 4  # pending by default; the lead's own label is accepted already
    wrong = page.locator(f".review-card[data-annotation-id='{by_ann[1].pk}']")
    wrong.locator("button.fix-label").click()
    wrong.locator(".fix-form select").select_option(str(dog.pk))
    wrong.locator(".fix-form button[type=submit]").click()
    wrong.locator(".badge.bad").wait_for()
    assert image_current_label(images[1]) == {"labels": [dog.pk]}
    assert Annotation.objects.get(pk=by_ann[1].pk).review_status == ReviewStatus.REJECTED

    bulk_requests = []
    page.on("request", lambda r: r.method == "POST" and "/annotations/review/" in r.url and bulk_requests.append(r.url))
    page.check("#select-all")
    assert page.inner_text("#selected-count") == "3 selected"
    page.click("#bulk-accept")
    page.locator(".toast", has_text="Accepted 3 annotations").wait_for()
    assert len(bulk_requests) == 1
    for annotation in (by_ann[0], by_ann[2], by_bob):
        assert Annotation.objects.get(pk=annotation.pk).review_status == ReviewStatus.ACCEPTED
        assert page.locator(f".review-card[data-annotation-id='{annotation.pk}'] .badge.ok").is_visible()
    assert page.inner_text("#selected-count") == "0 selected"

    # Filtered review: only the rejected one.
    page.select_option("select[name=review_status]", "rejected")
    page.click("#review-filters button[type=submit]")
    wait_for_js(page, "document.querySelector('#review-count').textContent === '1 annotation match'")

    # The confusion matrix and per-class precision/recall of the model.
    page.goto(f"/projects/{pid}/reports/#accuracy")
    matrix = page.locator("#confusion-matrix")
    matrix.wait_for()
    assert matrix.locator("tr[data-true=cat] td[data-predicted=cat]").inner_text() == "5"
    assert matrix.locator("tr[data-true=dog] td[data-predicted=cat]").inner_text() == "2"
    assert matrix.locator("tr[data-true=cat] td.recall").inner_text() == "0.83"
    assert matrix.locator("td.precision").first.inner_text() == "0.71"
    per_class = page.locator("table.per-class tr[data-class=dog]")
    assert per_class.locator("td[data-key=precision]").inner_text().startswith("0.8")
    assert per_class.locator("td[data-key=recall]").inner_text().startswith("0.667")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lead-day-confusion.png"), full_page=True)

    # The training curves of each run.
    page.goto(f"/projects/{pid}/models/")
    curve = page.locator("[data-run-curve] canvas")
    curve.wait_for()
    assert "3 epochs" in page.inner_text("[data-run-curve]")
    page.screenshot(path=str(ARTIFACTS / "lead-day.png"), full_page=True)


def test_a_lead_opens_a_detection_image_in_the_editor_and_saves_its_boxes(page, make_user):
    lead = make_user("lea")
    scene = detection_scene(members={lead: Role.LEAD}, images=2)
    image = next(iter(scene.predictions.values())).image
    sign_in(page, "lea")
    page.goto(f"/projects/{scene.project.pk}/images/?status=unlabeled")
    page.locator(f".image-tile[data-image-id='{image.pk}']").click()
    page.locator("#image-edit[data-loaded=true]").wait_for()
    assert page.locator("#box-list .box-row").count() == 2  # the deployed model's pre-label
    page.locator("#box-list .box-row").nth(1).locator("button.icon").click()  # drop the person
    page.click("#save")
    wait_for_js(page, "document.querySelector('#save-state').textContent === 'Label saved'")
    boxes = image_current_label(image)["boxes"]
    assert [box["label"] for box in boxes] == [scene.classes["car"].pk]
    assert page.locator("#box-list .box-row").count() == 1
    page.click("#back")
    page.wait_for_url(f"**/projects/{scene.project.pk}/images/?status=unlabeled")  # its filters kept
    page.locator(".image-tile").first.wait_for()
    assert page.locator(".image-tile").count() == 1
