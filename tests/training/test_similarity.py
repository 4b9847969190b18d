"""More like this and near-duplicates: the HNSW index kept in step with new vectors across
processes through the shared counter, the API's scopes and roles, and flags at embedding."""
import numpy as np
import pytest
from django.core.cache import caches
from django.core.files.storage import default_storage

from core.models import TaskType
from labeling.models import Role, TaskStatus
from tests.labeling.test_queue import add_images, as_user, make_project, member
from tests.training.test_queue_model_live import DIM, embed
from training import selectors, similarity
from training.models import NearDuplicate

pytestmark = pytest.mark.django_db


def line_project(n=12):
    """Images whose embeddings lie along an arc from e0 to e1: image k is most like k-1, k+1."""
    project = make_project(TaskType.CLASSIFICATION, classes=("a", "b"))
    images = add_images(project, [0.5] * n)
    angles = np.linspace(0, np.pi / 2, n)
    embed(project, images, [np.cos(a) * np.eye(1, DIM, 0)[0] + np.sin(a) * np.eye(1, DIM, 1)[0] for a in angles])
    return project, images


def state(project):
    return caches["coordination"].get(similarity._state_key(project.pk, selectors.embedding_key()))


def test_similar_images_come_nearest_first_without_the_image_itself(api_client):
    project, images = line_project()
    client = as_user(api_client, member(project))
    body = client.get(f"/api/images/{images[5].pk}/similar/?k=4").json()
    ids = [r["image_id"] for r in body["results"]]
    assert set(ids[:2]) == {images[4].pk, images[6].pk} and set(ids[2:]) == {images[3].pk, images[7].pk}
    scores = [r["similarity"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True) and 0.9 < scores[0] < 1.0
    assert images[5].pk not in ids and body["results"][0]["url"]


def test_the_unlabeled_scope_leaves_out_labeled_images_and_all_keeps_them(api_client):
    project, images = line_project()
    project.tasks.filter(image__in=[images[4], images[6]]).update(status=TaskStatus.DONE)
    client = as_user(api_client, member(project))
    unlabeled = client.get(f"/api/images/{images[5].pk}/similar/?k=2").json()["results"]
    assert {r["image_id"] for r in unlabeled} == {images[3].pk, images[7].pk}
    everything = client.get(f"/api/images/{images[5].pk}/similar/?k=2&scope=all").json()["results"]
    assert {r["image_id"] for r in everything} == {images[4].pk, images[6].pk}
    assert all(r["labeled"] for r in everything)


def test_similar_refuses_bad_input_and_strangers(api_client):
    project, images = line_project()
    bare = add_images(project, [0.1])[0]
    client = as_user(api_client, member(project))
    assert client.get(f"/api/images/{bare.pk}/similar/").status_code == 409
    assert "no embedding" in client.get(f"/api/images/{bare.pk}/similar/").json()["detail"]
    assert client.get(f"/api/images/{images[0].pk}/similar/?k=0").status_code == 400
    assert client.get(f"/api/images/{images[0].pk}/similar/?scope=some").status_code == 400
    other = make_project(TaskType.CLASSIFICATION, classes=("x",))
    outsider = as_user(api_client, member(other))
    assert outsider.get(f"/api/images/{images[0].pk}/similar/").status_code == 404


def test_another_process_loads_the_published_file_and_sees_vectors_written_since():
    project, images = line_project()
    similarity.project_index(project)  # the first use builds and publishes
    published = state(project)
    assert default_storage.exists(published["name"]) and published["size"] == len(images)
    similarity.forget_process_indexes()  # a second process: nothing loaded yet
    newer = add_images(project, [0.5])[0]
    embed(project, [newer], [np.eye(1, DIM, 7)[0]])
    index = similarity.project_index(project)
    assert state(project)["name"] == published["name"]  # loaded the file, no rebuild
    assert index.query(np.eye(1, DIM, 7)[0], 1)[0][0] == newer.pk  # and topped up


def test_a_rebuild_moves_the_counter_and_every_process_reloads():
    project, images = line_project()
    similarity.project_index(project)
    first = state(project)["name"]
    loaded = similarity._loaded[(project.pk, selectors.embedding_key())]
    similarity.similarity_index_rebuild(project=project)  # a worker rebuilds ...
    similarity._loaded[(project.pk, selectors.embedding_key())] = loaded  # ... while this process holds v1
    similarity.project_index(project)
    current = similarity._loaded[(project.pk, selectors.embedding_key())]
    assert current.version == state(project)["name"] != first
    assert not default_storage.exists(first)  # the old file is gone


def test_a_stale_index_queues_one_rebuild(monkeypatch, settings):
    settings.VISION_SIMILARITY_REBUILD_SHARE = 0.2
    sent = []
    monkeypatch.setattr(similarity, "enqueue", lambda name, *args: sent.append((name, args)))
    project, images = line_project(4)
    similarity.project_index(project)
    rng = np.random.default_rng(0)
    many = add_images(project, [0.5] * 101)
    embed(project, many, rng.standard_normal((101, DIM)))
    similarity.project_index(project)
    similarity.project_index(project)
    assert sent == [(similarity.REBUILD_TASK, (project.pk,))]


def test_near_duplicates_are_flagged_at_the_threshold_against_older_images_only():
    project = make_project(TaskType.CLASSIFICATION, classes=("a",), near_duplicate_threshold=0.95)
    old, copy, other = add_images(project, [0.5] * 3)
    base = np.eye(1, DIM, 0)[0]
    embed(project, [old, copy, other], [base, base + 0.1 * np.eye(1, DIM, 1)[0], np.eye(1, DIM, 2)[0]])
    assert similarity.near_duplicates_flag(project=project, image_ids=[old.pk, copy.pk, other.pk]) == 1
    row = NearDuplicate.objects.get()
    assert (row.image_id, row.duplicate_of_id) == (copy.pk, old.pk) and row.similarity > 0.99
    assert similarity.near_duplicates_flag(project=project, image_ids=[copy.pk]) == 1  # kept, not doubled
    assert NearDuplicate.objects.count() == 1
    project.near_duplicate_threshold = 1.0
    NearDuplicate.objects.all().delete()
    assert similarity.near_duplicates_flag(project=project, image_ids=[copy.pk]) == 0


def test_leads_list_and_dismiss_near_duplicates(api_client):
    project = make_project(TaskType.CLASSIFICATION, classes=("a",))
    old, copy = add_images(project, [0.5] * 2)
    row = NearDuplicate.objects.create(project=project, image=copy, duplicate_of=old, similarity=0.99)
    lead = as_user(api_client, member(project, Role.LEAD))
    listed = lead.get(f"/api/projects/{project.pk}/near-duplicates/").json()
    assert listed["count"] == 1 and listed["threshold"] == 0.97
    assert listed["items"][0]["image"]["id"] == copy.pk and listed["items"][0]["duplicate_of"]["id"] == old.pk
    assert lead.post(f"/api/near-duplicates/{row.pk}/dismiss/").json()["dismissed"] is True
    assert lead.get(f"/api/projects/{project.pk}/near-duplicates/").json()["count"] == 0
    assert lead.get(f"/api/projects/{project.pk}/near-duplicates/?include_dismissed=1").json()["count"] == 1
    annotator = as_user(api_client, member(project))
    assert annotator.get(f"/api/projects/{project.pk}/near-duplicates/").status_code == 403


def test_the_threshold_is_a_checked_project_setting(api_client):
    project = make_project(TaskType.CLASSIFICATION, classes=("a",))
    admin = as_user(api_client, member(project, Role.ADMIN))
    bad = admin.patch(f"/api/projects/{project.pk}/", {"near_duplicate_threshold": 1.5}, format="json")
    assert bad.status_code == 400 and "Near-duplicate threshold" in bad.json()["detail"]
    good = admin.patch(f"/api/projects/{project.pk}/", {"near_duplicate_threshold": 0.9}, format="json")
    assert good.status_code == 200 and good.json()["near_duplicate_threshold"] == 0.9


def test_a_large_project_without_an_index_queues_its_build_instead_of_blocking(api_client, monkeypatch, settings):
    settings.VISION_SIMILARITY_SYNC_BUILD_MAX = 5
    sent = []
    monkeypatch.setattr(similarity, "enqueue", lambda name, *args: sent.append((name, args)))
    project, images = line_project(8)
    client = as_user(api_client, member(project))
    for _ in range(2):
        response = client.get(f"/api/images/{images[0].pk}/similar/")
        assert response.status_code == 409 and "being built" in response.json()["detail"]
    assert sent == [(similarity.REBUILD_TASK, (project.pk,))]
    similarity.similarity_index_rebuild(project=project)  # the worker
    assert client.get(f"/api/images/{images[0].pk}/similar/").status_code == 200


def test_a_published_file_that_is_gone_is_rebuilt():
    project, images = line_project()
    similarity.project_index(project)
    gone = state(project)["name"]
    default_storage.delete(gone)
    similarity.forget_process_indexes()
    index = similarity.project_index(project)
    assert state(project)["name"] != gone and len(index) == len(images)
