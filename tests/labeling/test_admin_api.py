"""The admin's API: settings checked with readable messages, members invited by username,
their roles changed and removed, and a project that always keeps an admin."""
import pytest

from core.models import Project
from labeling.models import Membership, Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def _member(project, role, **user_fields):
    return MembershipFactory(project=project, role=role, user=UserFactory(**user_fields)).user


@pytest.fixture
def project():
    return ProjectFactory(task_type="detection")


@pytest.fixture
def admin_client(api_client, project):
    api_client.force_authenticate(_member(project, Role.ADMIN, username="boss"))
    return api_client


@pytest.mark.parametrize("field, value, says", [
    ("promotion_tolerance", -0.1, "Promotion tolerance must be a metric difference between 0 and 1"),
    ("random_share", 1.5, "Random share must be a share between 0 and 1"),
    ("random_share", -0.01, "Random share must be"),
    ("validation_share", 1, "Validation share must be a share between 0 and 0.95"),
    ("min_map50", 2, "Minimum mAP50 must be an mAP50 between 0 and 1"),
    ("queue_model_every", -1, "Queue model refit interval must be a number of labels, 0 or more"),
    ("lease_ttl_seconds", 5, "Lease time must be seconds between 30 and 86400"),
    ("lease_ttl_seconds", -600, "Lease time must be"),
    ("train_epochs", 0, "Epochs must be between 1 and 1000"),
    ("train_image_size", 16, "Image size must be pixels between 32 and 4096"),
    ("train_image_size", 500, "Image size must be a multiple of 32 for a detector"),
    ("train_batch_size", 0, "Batch size must be between 1 and 1024"),
    ("annotations_per_image", 0, "Annotations per image must be between 1 and 10"),
    ("retrain_every_n_labels", -5, "Retrain every N labels must be a number of labels, 0 or more"),
    ("target_metric", 1.2, "Target metric must be a metric value between 0 and 1"),
])
def test_a_bad_setting_is_refused_saying_what_it_must_be(admin_client, project, field, value, says):
    before = getattr(project, field)
    response = admin_client.patch(f"/api/projects/{project.pk}/", {field: value}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert says in body["detail"] and f"got {value}" in body["detail"]
    assert says in body["errors"][field][0]
    assert "Constraint" not in body["detail"]
    project.refresh_from_db()
    assert getattr(project, field) == before


def test_good_settings_are_saved_including_auto_and_the_queue_model(admin_client, project):
    response = admin_client.patch(f"/api/projects/{project.pk}/", {
        "sampling_strategy": "auto", "queue_model_every": 0, "min_map50": 0.2, "promotion_tolerance": 0.01,
        "random_share": 0, "validation_share": 0.3, "train_image_size": 320, "target_metric": None,
    }, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["sampling_strategy"], body["queue_model_every"], body["min_map50"]) == ("auto", 0, 0.2)
    project.refresh_from_db()
    assert project.promotion_tolerance == 0.01 and project.train_image_size == 320


def test_a_classifier_image_size_need_not_be_a_multiple_of_32(api_client):
    project = ProjectFactory(task_type="classification")
    api_client.force_authenticate(_member(project, Role.ADMIN))
    response = api_client.patch(f"/api/projects/{project.pk}/", {"train_image_size": 100}, format="json")
    assert response.status_code == 200


def test_an_unknown_strategy_is_refused(admin_client, project):
    response = admin_client.patch(f"/api/projects/{project.pk}/", {"sampling_strategy": "best"}, format="json")
    assert response.status_code == 400 and "sampling_strategy" in response.json()["detail"]


def test_creating_a_project_checks_its_settings_and_name(api_client):
    api_client.force_authenticate(UserFactory(is_staff=True))
    response = api_client.post("/api/projects/", {"name": "Cars", "task_type": "detection",
                                                  "promotion_tolerance": -1}, format="json")
    assert response.status_code == 400 and "Promotion tolerance must be" in response.json()["detail"]
    response = api_client.post("/api/projects/", {"name": "  ", "task_type": "detection"}, format="json")
    assert response.status_code == 400
    assert not Project.objects.exists()


def test_admin_invites_an_existing_user_by_username(admin_client, project):
    newcomer = UserFactory(username="newcomer")
    response = admin_client.post(f"/api/projects/{project.pk}/members/",
                                 {"user": "newcomer", "role": "lead"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["username"] == "newcomer" and response.json()["user_id"] == newcomer.pk
    assert Membership.objects.get(project=project, user=newcomer).role == Role.LEAD
    listed = admin_client.get(f"/api/projects/{project.pk}/members/").json()["results"]
    assert [(m["username"], m["role"]) for m in listed] == [("boss", "admin"), ("newcomer", "lead")]


def test_inviting_an_unknown_user_or_a_member_again_says_why(admin_client, project):
    response = admin_client.post(f"/api/projects/{project.pk}/members/",
                                 {"user": "nobody", "role": "annotator"}, format="json")
    assert response.status_code == 400 and "No user named 'nobody'" in response.json()["detail"]
    _member(project, Role.ANNOTATOR, username="ann")
    response = admin_client.post(f"/api/projects/{project.pk}/members/",
                                 {"user": "ann", "role": "lead"}, format="json")
    assert response.status_code == 400 and "ann is a member already (as annotator)" in response.json()["detail"]
    response = admin_client.post(f"/api/projects/{project.pk}/members/",
                                 {"user": "ann", "role": "owner"}, format="json")
    assert response.status_code == 400 and "role" in response.json()["detail"]


def test_admin_changes_a_role_and_removes_a_member(admin_client, project):
    ann = _member(project, Role.ANNOTATOR, username="ann")
    url = f"/api/projects/{project.pk}/members/{ann.pk}/"
    response = admin_client.patch(url, {"role": "admin"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "admin"
    assert admin_client.delete(url).status_code == 204
    assert not Membership.objects.filter(project=project, user=ann).exists()
    assert admin_client.delete(url).status_code == 404


def test_the_last_admin_cannot_be_demoted_or_removed(admin_client, project):
    boss = Membership.objects.get(project=project, role=Role.ADMIN).user
    url = f"/api/projects/{project.pk}/members/{boss.pk}/"
    response = admin_client.patch(url, {"role": "lead"}, format="json")
    assert response.status_code == 400
    assert "boss is the last admin of this project and cannot be made lead" in response.json()["detail"]
    response = admin_client.delete(url)
    assert response.status_code == 400 and "last admin" in response.json()["detail"]
    assert Membership.objects.get(project=project, user=boss).role == Role.ADMIN
    # With a second admin, the first may step down.
    other = _member(project, Role.ADMIN, username="other")
    assert admin_client.patch(url, {"role": "lead"}, format="json").status_code == 200
    response = admin_client.delete(f"/api/projects/{project.pk}/members/{other.pk}/")
    assert response.status_code == 403  # boss is a lead now


@pytest.mark.parametrize("role, status", [(Role.LEAD, 403), (Role.ANNOTATOR, 403), (None, 404)])
def test_only_admins_manage_members_and_strangers_get_404(api_client, project, role, status):
    target = _member(project, Role.ANNOTATOR, username="target")
    UserFactory(username="someone")
    caller = _member(project, role) if role else UserFactory()
    api_client.force_authenticate(caller)
    base = f"/api/projects/{project.pk}/members/"
    assert api_client.post(base, {"user": "someone", "role": "annotator"}, format="json").status_code == status
    assert api_client.patch(f"{base}{target.pk}/", {"role": "lead"}, format="json").status_code == status
    assert api_client.delete(f"{base}{target.pk}/").status_code == status
    assert api_client.get(base).status_code == (200 if role == Role.LEAD else status)
    assert Membership.objects.get(project=project, user=target).role == Role.ANNOTATOR


def test_the_django_admin_refuses_a_negative_tolerance_with_the_same_message():
    from labeling.admin import ProjectAdminForm

    project = ProjectFactory(task_type="detection")
    data = {field: getattr(project, field) for field in ProjectAdminForm.base_fields
            if field not in ("created_by", "target_metric")}
    data.update(promotion_tolerance=-0.1, created_by="", target_metric="")
    form = ProjectAdminForm(data=data, instance=project)
    assert not form.is_valid()
    assert "Promotion tolerance must be a metric difference between 0 and 1" in form.errors["promotion_tolerance"][0]
    data["promotion_tolerance"] = 0.02
    form = ProjectAdminForm(data=data, instance=project)
    assert form.is_valid(), form.errors
