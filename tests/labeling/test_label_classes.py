"""Label classes: default hotkeys, keys set per class with readable refusals, the demo's
digits and the migration that gives old digit classes their own digit."""
import importlib

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from core.models import LabelClass
from labeling.models import Role
from labeling.services import label_class_create
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def _admin_client(api_client, project):
    api_client.force_authenticate(MembershipFactory(project=project, role=Role.ADMIN).user)
    return api_client


def test_a_one_character_name_is_its_own_key_and_other_names_get_the_next_free_digit():
    project = ProjectFactory(task_type="classification")
    keys = {name: label_class_create(project=project, name=name).hotkey for name in ["cat", "7", "2", "dog", "K", "s"]}
    # "s" is the editor's skip key: it gets a digit instead of shadowing Skip.
    assert keys == {"cat": "1", "7": "7", "2": "2", "dog": "3", "K": "k", "s": "4"}


def test_digit_classes_made_in_any_order_get_their_own_digit():
    project = ProjectFactory(task_type="classification")
    for name in "3719028465":
        label_class_create(project=project, name=name)
    assert all(c.hotkey == c.name for c in project.label_classes.all())


def test_a_taken_key_is_refused_with_the_class_that_has_it(api_client):
    project = ProjectFactory()
    client = _admin_client(api_client, project)
    cat = client.post(f"/api/projects/{project.pk}/label-classes/", {"name": "cat"}).json()
    dog = client.post(f"/api/projects/{project.pk}/label-classes/", {"name": "dog", "hotkey": "D"}).json()
    assert (cat["hotkey"], dog["hotkey"]) == ("1", "d")

    response = client.post(f"/api/projects/{project.pk}/label-classes/", {"name": "bird", "hotkey": "1"})
    assert response.status_code == 400
    assert response.json()["detail"] == ('hotkey: Key "1" is taken by class "cat"; choose another key, '
                                         "or clear that class's key first.")
    response = client.patch(f"/api/projects/{project.pk}/label-classes/{cat['id']}/", {"hotkey": "d"},
                            format="json")
    assert response.status_code == 400 and 'taken by class "dog"' in response.json()["detail"]
    assert "Constraint" not in response.json()["detail"]
    response = client.patch(f"/api/projects/{project.pk}/label-classes/{cat['id']}/", {"hotkey": "s"},
                            format="json")
    assert response.status_code == 400 and "Skip key" in response.json()["detail"]
    response = client.post(f"/api/projects/{project.pk}/label-classes/", {"name": "cat"})
    assert response.status_code == 400 and 'A class named "cat" exists already' in response.json()["detail"]
    assert LabelClass.objects.get(pk=cat["id"]).hotkey == "1"


def test_a_key_is_changed_or_cleared_per_class(api_client):
    project = ProjectFactory()
    client = _admin_client(api_client, project)
    cat = label_class_create(project=project, name="cat")
    url = f"/api/projects/{project.pk}/label-classes/{cat.pk}/"
    response = client.patch(url, {"hotkey": "C", "color": "#112233"}, format="json")
    assert response.status_code == 200
    assert (response.json()["hotkey"], response.json()["color"]) == ("c", "#112233")
    assert client.patch(url, {"hotkey": ""}, format="json").json()["hotkey"] == ""
    # A cleared key can be taken by another class; the name stays unique.
    assert label_class_create(project=project, name="cow", hotkey="c").hotkey == "c"
    assert client.patch(url, {"name": "cat"}, format="json").status_code == 200


def test_the_digits_demo_has_each_digit_as_its_own_key(settings, tmp_path, monkeypatch):
    from django.core.management import call_command

    from core.models import Project
    from labeling import demo

    settings.VAR_DIR = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    real_detection, real_classification = demo.detection_images, demo.classification_images
    monkeypatch.setattr(demo, "detection_images", lambda: real_detection(limit=2))
    monkeypatch.setattr(demo, "classification_images", lambda: real_classification(limit=12))
    call_command("seed_demo")
    call_command("seed_demo")  # nothing twice
    digits = Project.objects.get(task_type="classification")
    classes = list(digits.label_classes.order_by("order", "id").values_list("name", "hotkey"))
    assert classes == [(str(d), str(d)) for d in range(10)]


def test_the_migration_gives_old_digit_classes_their_own_digit():
    migration = importlib.import_module("labeling.migrations.0008_digit_class_hotkeys")
    digits, pets = ProjectFactory(), ProjectFactory()
    # What creation order gave them: keys 1-9, "9" none; a named class holding "3" too.
    for position, name in enumerate("0123456789"):
        LabelClass.objects.create(project=digits, name=name, hotkey=str(position + 1) if position < 9 else "",
                                  order=position)
    LabelClass.objects.filter(project=digits, name="2").update(hotkey="")
    LabelClass.objects.create(project=digits, name="blank", hotkey="3", order=10)
    LabelClass.objects.create(project=pets, name="cat", hotkey="7")
    # the models as that migration saw them (the tables have not moved since)
    apps = MigrationLoader(connection).project_state(("labeling", "0008_digit_class_hotkeys")).apps
    migration.digit_classes_get_their_digit(apps, None)
    keys = dict(digits.label_classes.values_list("name", "hotkey"))
    assert {name: keys[name] for name in "0123456789"} == {name: name for name in "0123456789"}
    assert keys["blank"] == ""  # every digit is a digit class's now
    assert pets.label_classes.get().hotkey == "7"
