"""The class tree editor in Chromium: add a class and a child, move by dragging and by the
menu, rename inline, a refused key and a new colour, merge with the number of labels asked
first and the relabel visible in the database, and delete (refused for a used class);
a taxonomy suggested by a stand-in vision-language endpoint, added where the admin adds it."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.models import LabelClass, ModelVersion
from labeling.models import Annotation, AnnotationKind, LabelClassEvent, Role

from .conftest import sign_in, wait_for_js
from .factories import classification_scene

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _node(page, name: str):
    return page.locator(f".tree-node[data-name='{name}']")


def test_an_admin_builds_the_tree_renames_moves_and_merges_with_the_relabel_stored(page, make_user):
    admin = make_user("ada")
    scene = classification_scene(members={admin: Role.ADMIN}, images=3)
    project, cat, dog = scene.project, scene.classes["cat"], scene.classes["dog"]
    dog_labels = [Annotation.objects.create(project=project, image=prediction.image, author=admin,
                                            kind=AnnotationKind.CORRECT, payload={"labels": [dog.pk]})
                  for prediction in list(scene.predictions.values())[:2]]
    sign_in(page, "ada")
    page.goto(f"/projects/{project.pk}/classes/")
    _node(page, "dog").wait_for()
    assert _node(page, "dog").locator(".tree-count").inner_text() == "2 labels"

    page.fill("#tree-add input[name=name]", "animal")
    page.click("#tree-add button[type=submit]")
    _node(page, "animal").wait_for()
    _node(page, "animal").get_by_role("button", name="add a class under it: animal").click()
    _node(page, "animal").get_by_label("new class under animal").fill("bird")
    _node(page, "animal").get_by_role("button", name="Add", exact=True).click()
    _node(page, "bird").wait_for()
    animal = LabelClass.objects.get(project=project, name="animal")
    assert LabelClass.objects.get(project=project, name="bird").parent_id == animal.pk

    # Drag "cat" onto "animal"; choose "animal" for "dog" from its menu.
    _node(page, "cat").locator(".tree-handle").drag_to(_node(page, "animal"))
    wait_for_js(page, "document.querySelector(\".tree-node[data-name='cat']\").style.getPropertyValue('--depth') === '1'")
    _node(page, "dog").get_by_label("Move under…").select_option(label="animal")
    wait_for_js(page, "document.querySelector(\".tree-node[data-name='dog']\").style.getPropertyValue('--depth') === '1'")
    assert LabelClass.objects.get(pk=cat.pk).parent_id == animal.pk
    assert LabelClass.objects.get(pk=dog.pk).parent_id == animal.pk
    assert _node(page, "animal").locator(".tree-count").inner_text() == "0 labels (2 with subclasses)"

    name = _node(page, "bird").locator("input.tree-name")
    name.fill("parrot")
    name.press("Enter")
    _node(page, "parrot").wait_for()
    assert LabelClass.objects.filter(project=project, name="parrot").exists()

    # A key another class has is refused, naming it; the field shows the stored key again.
    key = _node(page, "parrot").locator("input.tree-key")
    stored = key.input_value()
    key.fill(cat.hotkey)
    key.press("Tab")
    page.locator(".toast-error", has_text='taken by class "cat"').wait_for()
    wait_for_js(page, f"document.querySelector(\".tree-node[data-name='parrot'] input.tree-key\").value === '{stored}'")
    _node(page, "parrot").locator("input[type=color]").evaluate(
        "input => { input.value = '#123456'; input.dispatchEvent(new Event('change')); }")
    page.locator(".toast", has_text='New colour for "parrot"').wait_for()
    assert LabelClass.objects.get(project=project, name="parrot").color == "#123456"

    questions = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    _node(page, "dog").get_by_label("Merge into…").select_option(label="animal / cat")
    _node(page, "dog").wait_for(state="detached")
    assert questions == ['Merge "dog" into "cat"? 2 labels will move to "cat" and "dog" is deleted.']
    assert _node(page, "cat").locator(".tree-count").inner_text() == "2 labels"
    assert not LabelClass.objects.filter(pk=dog.pk).exists()
    assert [Annotation.objects.get(pk=a.pk).payload for a in dog_labels] == [{"labels": [cat.pk]}] * 2
    assert ModelVersion.objects.get(pk=scene.version.pk).class_ids == [cat.pk, cat.pk]
    event = LabelClassEvent.objects.get(class_id=dog.pk, action="merge")
    assert sorted(event.details["annotation_ids"]) == sorted(a.pk for a in dog_labels) and event.actor == admin
    page.locator("#tree-history td", has_text='merged into "cat"').wait_for()

    # A used class cannot be deleted; an unused one can.
    _node(page, "cat").get_by_role("button", name="delete: cat").click()
    page.locator(".toast-error", has_text="merge it into another class instead").wait_for()
    assert LabelClass.objects.filter(pk=cat.pk).exists()
    _node(page, "parrot").get_by_role("button", name="delete: parrot").click()
    _node(page, "parrot").wait_for(state="detached")
    assert not LabelClass.objects.filter(project=project, name="parrot").exists()
    # The two refusals (the taken key, the used class) are the only errors the console saw.
    refused = [e for e in page.console.errors if "status of 400" in e]
    assert len(refused) == 2
    page.console.errors[:] = [e for e in page.console.errors if e not in refused]


class _StandInAssist(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat completions endpoint that proposes one fixed taxonomy."""

    def do_POST(self):
        self.server.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        taxonomy = [{"name": "animal", "children": [{"name": "Cat", "children": []}, {"name": "bird", "children": []}]}]
        body = json.dumps({"choices": [{"message": {"role": "assistant",
                                                    "content": json.dumps({"taxonomy": taxonomy})}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in_assist(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInAssist)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.VISION_ASSIST_URL = f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
    settings.VISION_ASSIST_MODEL = "stand-in"
    settings.VISION_ASSIST_KEY_ENV = ""
    yield server
    server.shutdown()
    thread.join()


def test_a_suggested_taxonomy_is_added_top_down_only_where_the_admin_adds_it(page, make_user, stand_in_assist):
    admin = make_user("ada")
    scene = classification_scene(members={admin: Role.ADMIN}, images=2)
    project = scene.project
    sign_in(page, "ada")
    page.goto(f"/projects/{project.pk}/classes/")
    page.click("#tree-suggest")
    suggestion = page.locator("#tree-suggestions")
    suggestion.locator("[data-suggested='bird']", has_text='add "animal" first').wait_for()
    assert suggestion.locator("[data-suggested='Cat']").inner_text().endswith("in the tree")
    assert not LabelClass.objects.filter(project=project, name__in=["animal", "bird"]).exists()
    images = [part for part in stand_in_assist.requests[0]["messages"][1]["content"] if part["type"] == "image_url"]
    assert len(stand_in_assist.requests) == 1 and len(images) == 2

    page.get_by_role("button", name="add suggested animal").click()
    page.get_by_role("button", name="add suggested bird").click()
    _node(page, "bird").wait_for()
    animal = LabelClass.objects.get(project=project, name="animal")
    assert LabelClass.objects.get(project=project, name="bird").parent_id == animal.pk
    assert LabelClass.objects.get(pk=scene.classes["cat"].pk).parent_id is None  # only what was added
