"""The class tree: adding under a parent, moving without loops, merging with a relabel of
every annotation and prediction in one audited transaction, deleting only unused classes,
labels counting for their ancestors, and the accuracy report per level."""
import pytest

from core.models import LabelClass, ModelVersion, Prediction
from labeling import signals, taxonomy
from labeling.models import Annotation, AnnotationKind, LabelClassEvent, Role
from labeling.services import label_class_create
from reports.models import ReportAgreementPair
from reports.selectors import report_accuracy
from tests.factories import ImageFactory, MembershipFactory, ProjectFactory
from training.models import ClassExample

pytestmark = pytest.mark.django_db


@pytest.fixture
def garden():
    """tree > {oak, elm}; flower > rose; a classification project."""
    project = ProjectFactory(task_type="classification")
    tree = label_class_create(project=project, name="tree")
    classes = {"tree": tree, "oak": label_class_create(project=project, name="oak", parent_id=tree.pk),
               "elm": label_class_create(project=project, name="elm", parent_id=tree.pk)}
    classes["flower"] = label_class_create(project=project, name="flower")
    classes["rose"] = label_class_create(project=project, name="rose", parent_id=classes["flower"].pk)
    return project, classes


def _client(api_client, project, role=Role.ADMIN):
    membership = MembershipFactory(project=project, role=role)
    api_client.force_authenticate(membership.user)
    return api_client, membership.user


def _label(project, class_ids, **extra):
    image = ImageFactory(project=project)
    return Annotation.objects.create(project=project, image=image, kind=AnnotationKind.CORRECT,
                                     payload={"labels": list(class_ids)}, **extra)


def test_a_child_is_added_by_parent_id_and_the_tree_shows_depth_path_and_counts(api_client, garden):
    project, c = garden
    client, _ = _client(api_client, project)
    url = f"/api/projects/{project.pk}/label-classes/"
    response = client.post(url, {"name": "red oak", "parent_id": c["oak"].pk}, format="json")
    assert response.status_code == 201 and response.json()["parent"] == c["oak"].pk
    red_oak = response.json()["id"]
    _label(project, [red_oak])
    _label(project, [c["oak"].pk])
    _label(project, [c["tree"].pk])

    nodes = {n["name"]: n for n in client.get(url + "tree/").json()["classes"]}
    assert [n["name"] for n in client.get(url + "tree/").json()["classes"]] == ["tree", "oak", "red oak", "elm", "flower", "rose"]
    assert (nodes["red oak"]["depth"], nodes["red oak"]["path"]) == (2, ["tree", "oak"])
    assert (nodes["oak"]["labels"], nodes["oak"]["subtree_labels"]) == (1, 2)
    assert (nodes["tree"]["labels"], nodes["tree"]["subtree_labels"]) == (1, 3)
    assert nodes["flower"]["subtree_labels"] == 0

    response = client.post(url, {"name": "x", "parent_id": 999999}, format="json")
    assert response.status_code == 400 and "not a class of this project" in response.json()["detail"]


def test_a_move_refuses_loops_and_other_projects_classes_and_goes_to_the_top_with_null(api_client, garden):
    project, c = garden
    client, user = _client(api_client, project)
    url = f"/api/projects/{project.pk}/label-classes/{c['tree'].pk}/"
    response = client.patch(url, {"parent": c["oak"].pk}, format="json")
    assert response.status_code == 400 and "would make a loop" in response.json()["detail"]
    response = client.patch(url, {"parent": c["tree"].pk}, format="json")
    assert response.status_code == 400 and "under itself" in response.json()["detail"]
    stranger = label_class_create(project=ProjectFactory(), name="other")
    response = client.patch(url, {"parent": stranger.pk}, format="json")
    assert response.status_code == 400 and "not a class of this project" in response.json()["detail"]
    assert LabelClass.objects.get(pk=c["tree"].pk).parent_id is None

    oak_url = f"/api/projects/{project.pk}/label-classes/{c['oak'].pk}/"
    assert client.patch(oak_url, {"parent": c["flower"].pk}, format="json").json()["parent"] == c["flower"].pk
    assert client.patch(oak_url, {"parent": None}, format="json").json()["parent"] is None
    moves = LabelClassEvent.objects.filter(class_id=c["oak"].pk, action="update").order_by("id")
    assert [e.details["parent"] for e in moves] == [[c["tree"].pk, c["flower"].pk], [c["flower"].pk, None]]
    assert all(e.actor == user for e in moves)


def test_a_rename_or_key_already_in_use_answers_400_and_changes_nothing(api_client, garden):
    project, c = garden
    client, _ = _client(api_client, project)
    url = f"/api/projects/{project.pk}/label-classes/{c['oak'].pk}/"
    response = client.patch(url, {"name": "elm"}, format="json")
    assert response.status_code == 400 and 'A class named "elm" exists already' in response.json()["detail"]
    response = client.patch(url, {"hotkey": c["elm"].hotkey}, format="json")
    assert response.status_code == 400 and 'taken by class "elm"' in response.json()["detail"]
    response = client.patch(url, {"color": "red"}, format="json")
    assert response.status_code == 400
    oak = LabelClass.objects.get(pk=c["oak"].pk)
    assert (oak.name, oak.hotkey) == ("oak", c["oak"].hotkey)
    assert not LabelClassEvent.objects.filter(class_id=oak.pk, action="update").exists()


def test_a_merge_relabels_annotations_predictions_versions_and_agreement_in_one_audited_step(api_client, garden):
    project, c = garden
    client, user = _client(api_client, project)
    elm, oak, tree = c["elm"].pk, c["oak"].pk, c["tree"].pk
    both = _label(project, [elm, oak])
    only_elm = _label(project, [elm])
    untouched = _label(project, [c["rose"].pk])
    version = ModelVersion.objects.create(project=project, number=1, backend="classifier",
                                          class_ids=[tree, oak, elm])
    prediction = Prediction.objects.create(image=only_elm.image, model_version=version,
                                           payload={"labels": [elm], "probs": [0.1, 0.2, 0.7]})
    ReportAgreementPair.objects.create(project=project, annotator_a=1, annotator_b=2, label_a=elm, label_b=oak,
                                       comparisons=3, score_sum=0)
    ReportAgreementPair.objects.create(project=project, annotator_a=1, annotator_b=2, label_a=oak, label_b=oak,
                                       comparisons=2, score_sum=2)
    red_elm = label_class_create(project=project, name="red elm", parent_id=elm)
    ClassExample.objects.create(project=project, label_class=c["elm"], image=only_elm.image)
    ClassExample.objects.create(project=project, label_class=c["elm"], image=both.image)
    ClassExample.objects.create(project=project, label_class=c["oak"], image=both.image)

    response = client.post(f"/api/projects/{project.pk}/label-classes/{elm}/merge/", {"target": oak}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"source": "elm", "target": oak, "annotations": 2, "predictions": 1,
                               "model_versions": 1, "children_moved": 1}
    both.refresh_from_db()
    only_elm.refresh_from_db()
    untouched.refresh_from_db()
    assert (both.payload, only_elm.payload, untouched.payload) == (
        {"labels": [oak]}, {"labels": [oak]}, {"labels": [c["rose"].pk]})
    prediction.refresh_from_db()
    version.refresh_from_db()
    assert prediction.payload == {"labels": [oak], "probs": [0.1, 0.2, 0.7]}
    assert version.class_ids == [tree, oak, oak]
    cells = {(r.label_a, r.label_b): (r.comparisons, r.score_sum)
             for r in ReportAgreementPair.objects.filter(project=project)}
    assert cells == {(oak, oak): (5, 5.0)}
    assert LabelClass.objects.get(pk=red_elm.pk).parent_id == oak
    assert sorted(ClassExample.objects.filter(project=project).values_list("label_class_id", "image_id")) == sorted(
        [(oak, only_elm.image_id), (oak, both.image_id)])
    assert not LabelClass.objects.filter(pk=elm).exists()

    event = LabelClassEvent.objects.get(class_id=elm, action="merge")
    assert event.actor == user and event.class_name == "elm"
    assert sorted(event.details["annotation_ids"]) == sorted([both.pk, only_elm.pk])
    history = client.get(f"/api/projects/{project.pk}/label-classes/history/").json()["results"]
    assert history[0]["action"] == "merge" and history[0]["details"]["target"] == {"id": oak, "name": "oak"}


def test_detection_boxes_are_relabeled_by_a_merge():
    project = ProjectFactory(task_type="detection")
    car, truck = (label_class_create(project=project, name=n) for n in ("car", "truck"))
    image = ImageFactory(project=project)
    box = {"x1": 1.0, "y1": 1.0, "x2": 5.0, "y2": 5.0}
    annotation = Annotation.objects.create(project=project, image=image, kind=AnnotationKind.ACCEPT, payload={
        "boxes": [{**box, "label": truck.pk}, {**box, "label": car.pk}]})
    taxonomy.label_class_merge(source=truck, target=car)
    annotation.refresh_from_db()
    assert [b["label"] for b in annotation.payload["boxes"]] == [car.pk, car.pk]


def test_a_merge_that_fails_part_way_changes_nothing(garden):
    project, c = garden
    annotation = _label(project, [c["elm"].pk])

    def refuse(**kwargs):
        raise RuntimeError("a receiver failed")

    signals.label_class_merged.connect(refuse)
    try:
        with pytest.raises(RuntimeError):
            taxonomy.label_class_merge(source=c["elm"], target=c["oak"])
    finally:
        signals.label_class_merged.disconnect(refuse)
    annotation.refresh_from_db()
    assert annotation.payload == {"labels": [c["elm"].pk]}
    assert LabelClass.objects.filter(pk=c["elm"].pk).exists()
    assert not LabelClassEvent.objects.filter(action="merge").exists()


def test_a_merge_into_a_class_below_or_of_another_project_is_refused(api_client, garden):
    project, c = garden
    client, _ = _client(api_client, project)
    url = f"/api/projects/{project.pk}/label-classes/{c['tree'].pk}/merge/"
    response = client.post(url, {"target": c["oak"].pk}, format="json")
    assert response.status_code == 400 and 'sits under "tree"' in response.json()["detail"]
    other = label_class_create(project=ProjectFactory(), name="other")
    response = client.post(url, {"target": other.pk}, format="json")
    assert response.status_code == 400 and "not a class of this project" in response.json()["detail"]
    response = client.post(url, {"target": c["tree"].pk}, format="json")
    assert response.status_code == 400 and "into itself" in response.json()["detail"]
    assert response.status_code == 400 and client.post(url, {}, format="json").status_code == 400
    assert LabelClass.objects.filter(project=project).count() == 5


def test_only_admins_reshape_the_tree(api_client, garden):
    project, c = garden
    client, _ = _client(api_client, project, role=Role.LEAD)
    base = f"/api/projects/{project.pk}/label-classes/"
    assert client.post(f"{base}{c['elm'].pk}/merge/", {"target": c["oak"].pk}, format="json").status_code == 403
    assert client.delete(f"{base}{c['elm'].pk}/").status_code == 403
    assert client.get(f"{base}tree/").status_code == 200
    api_client.force_authenticate(MembershipFactory(project=ProjectFactory(), role=Role.ADMIN).user)
    assert api_client.get(f"{base}tree/").status_code == 404
    assert LabelClass.objects.filter(pk=c["elm"].pk).exists()


def test_a_used_class_cannot_be_deleted_and_an_unused_one_hands_its_children_up(api_client, garden):
    project, c = garden
    client, _ = _client(api_client, project)
    base = f"/api/projects/{project.pk}/label-classes/"
    _label(project, [c["rose"].pk])
    response = client.delete(f"{base}{c['rose'].pk}/")
    assert response.status_code == 400
    assert response.json()["detail"] == ('Class "rose" is used by 1 annotation(s) and 0 prediction(s); merge it '
                                         "into another class instead, so those labels keep a class.")
    version = ModelVersion.objects.create(project=project, number=1, backend="classifier", class_ids=[c["elm"].pk])
    Prediction.objects.create(image=ImageFactory(project=project), model_version=version,
                              payload={"labels": [c["elm"].pk]})
    assert "1 prediction(s)" in client.delete(f"{base}{c['elm'].pk}/").json()["detail"]

    assert client.delete(f"{base}{c['tree'].pk}/").status_code == 204
    assert LabelClass.objects.get(pk=c["oak"].pk).parent_id is None
    assert LabelClassEvent.objects.get(class_id=c["tree"].pk, action="delete").details["children_moved"] == [
        c["oak"].pk, c["elm"].pk]
    assert LabelClass.objects.filter(pk=c["rose"].pk).exists()


def test_a_label_counts_for_its_ancestors_in_filters_and_selectors(api_client, garden):
    project, c = garden
    client, _ = _client(api_client, project, role=Role.LEAD)
    oak_label = _label(project, [c["oak"].pk])
    _label(project, [c["rose"].pk])
    browse = client.get(f"/api/projects/{project.pk}/images/browse/", {"label": c["tree"].pk}).json()
    assert [row["id"] for row in browse["results"]] == [oak_label.image_id]
    assert taxonomy.labels_with_ancestors(project, [c["oak"].pk]) == {c["oak"].pk, c["tree"].pk}
    assert taxonomy.class_at_level(project, 0)[c["oak"].pk] == c["tree"].pk
    assert taxonomy.class_at_level(project, 1)[c["tree"].pk] == c["tree"].pk  # shallower: itself


def test_the_accuracy_report_per_level_sums_the_confusion_matrix_into_ancestors(api_client, garden):
    project, c = garden
    # True rows, predicted columns, over oak, elm, rose: oak and elm confused with each
    # other (right at the tree level), one rose taken for an elm (wrong at every level).
    matrix = [[4, 2, 0], [1, 3, 0], [0, 1, 5]]
    ModelVersion.objects.create(project=project, number=1, backend="classifier",
                                class_ids=[c["oak"].pk, c["elm"].pk, c["rose"].pk],
                                metrics={"accuracy": 12 / 16, "confusion_matrix": matrix})
    client, _ = _client(api_client, project, role=Role.LEAD)
    url = f"/api/projects/{project.pk}/reports/accuracy/"
    leaf = client.get(url).json()
    assert leaf["confusion_matrices"][0]["matrix"] == matrix and leaf["level"] is None and leaf["levels"] == 2

    top = client.get(url, {"level": 0}).json()
    assert top["confusion_matrices"][0]["classes"] == ["tree", "flower"]
    assert top["confusion_matrices"][0]["matrix"] == [[10, 0], [1, 5]]
    assert top["tables"]["versions"][0]["level_accuracy"] == pytest.approx(15 / 16)
    assert top["tables"]["versions"][0]["accuracy"] == pytest.approx(12 / 16)
    rows = {row["class_name"]: row for row in top["tables"]["per_class"]}
    assert rows["tree"]["recall"] == 1.0 and rows["flower"]["recall"] == pytest.approx(5 / 6)
    assert report_accuracy(project=project, level=1)["confusion_matrices"][0]["matrix"] == matrix

    assert client.get(url, {"level": "-1"}).status_code == 400
    assert client.get(f"/api/projects/{project.pk}/reports/team/", {"level": 0}).status_code == 400


def test_the_tree_editor_page_is_for_admins(client, garden):
    project, _ = garden
    lead = MembershipFactory(project=project, role=Role.LEAD).user
    admin = MembershipFactory(project=project, role=Role.ADMIN).user
    client.force_login(lead)
    assert client.get(f"/projects/{project.pk}/classes/").status_code == 403
    client.force_login(admin)
    response = client.get(f"/projects/{project.pk}/classes/")
    assert response.status_code == 200 and b'id="class-tree"' in response.content


def test_a_project_with_a_tree_can_still_be_deleted_but_a_parent_alone_cannot(garden):
    from django.db.models import RestrictedError

    project, c = garden
    with pytest.raises(RestrictedError):
        LabelClass.objects.filter(pk=c["tree"].pk).delete()  # around the service, which lifts children
    project.delete()
    assert not LabelClass.objects.filter(pk__in=[n.pk for n in c.values()]).exists()
