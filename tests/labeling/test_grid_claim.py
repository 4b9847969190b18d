"""The grid mode's batch claim: many leases for one person, never a task another holds,
the caller's own leases back first, and refusals that say what is wrong."""
import pytest

from labeling.models import Role, Task
from tests.factories import ImageFactory, MembershipFactory, ProjectFactory, TaskFactory

pytestmark = pytest.mark.django_db


def _pool(task_type="classification", n=5):
    project = ProjectFactory(task_type=task_type)
    for i in range(n):
        TaskFactory(image=ImageFactory(project=project), priority=float(n - i))
    return project


def _client(api_client, project):
    user = MembershipFactory(project=project, role=Role.ANNOTATOR).user
    api_client.force_authenticate(user)
    return user


def test_two_grids_claim_disjoint_tasks_best_first_and_a_reload_gets_its_own_back(api_client):
    project = _pool()
    url = f"/api/projects/{project.pk}/tasks/batch/"
    first = _client(api_client, project)
    mine = [item["task"]["id"] for item in api_client.get(url, {"size": 3}).json()["items"]]
    best = list(Task.objects.filter(project=project).order_by("-priority").values_list("id", flat=True))
    assert mine == best[:3]
    assert set(Task.objects.filter(lease_holder=first).values_list("id", flat=True)) == set(mine)
    assert [i["task"]["id"] for i in api_client.get(url, {"size": 3}).json()["items"]] == mine

    _client(api_client, project)
    theirs = [item["task"]["id"] for item in api_client.get(url, {"size": 3}).json()["items"]]
    assert theirs == best[3:]
    assert api_client.get(url, {"size": 3, "exclude": ",".join(map(str, theirs))}).json()["items"] == []


def test_a_grid_is_refused_for_detection_and_for_a_size_out_of_range(api_client):
    project = _pool(task_type="detection")
    _client(api_client, project)
    response = api_client.get(f"/api/projects/{project.pk}/tasks/batch/")
    assert response.status_code == 400 and "classification" in response.json()["detail"]
    project = _pool()
    _client(api_client, project)
    for size in ("0", "61", "many"):
        response = api_client.get(f"/api/projects/{project.pk}/tasks/batch/", {"size": size})
        assert response.status_code == 400 and "size" in response.json()["detail"]
    assert not Task.objects.filter(project=project, lease_holder__isnull=False).exists()
