"""The vision-language assist against a stand-in chat completions server started here: a good
reply, a taxonomy, a timeout, malformed replies and HTTP errors give a clear answer, a log row
each, and leave everything else as it was; off by default; bounded."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.models import LabelClass, TaskType
from labeling.models import Annotation, Role
from tests.factories import ImageFactory
from tests.labeling.test_queue import as_user, make_project, member
from training.models import AssistRequest, AssistStatus

pytestmark = pytest.mark.django_db


class StandIn:
    """A chat completions server on localhost: ``reply`` is the message content to send (a
    str), or one of "slow", "not json", "no choices", "http 500"."""

    def __init__(self):
        self.reply = json.dumps({"names": ["sneaker", "shoe"]})
        self.requests: list[dict] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                reply = stand_in.reply
                if reply == "slow":
                    time.sleep(1.5)
                    reply = json.dumps({"names": ["late"]})
                if reply == "http 500":
                    self.send_response(500)
                    self.end_headers()
                    return
                if reply == "not json":
                    payload = b"<html>proxy error</html>"
                elif reply == "no choices":
                    payload = json.dumps({"id": "x", "object": "chat.completion"}).encode()
                else:
                    payload = json.dumps({"id": "c1", "object": "chat.completion", "model": body["model"],
                                          "choices": [{"index": 0, "finish_reason": "stop",
                                                       "message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except BrokenPipeError:  # the client gave up (the timeout case)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/chat/completions"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def stand_in(settings, monkeypatch):
    server = StandIn()
    settings.VISION_ASSIST_URL = server.url
    settings.VISION_ASSIST_MODEL = "tiny-vlm"
    settings.VISION_ASSIST_KEY_ENV = "VISION_TEST_ASSIST_KEY"
    settings.VISION_ASSIST_TIMEOUT_SECONDS = 0.5
    monkeypatch.setenv("VISION_TEST_ASSIST_KEY", "sk-test-123")
    yield server
    server.close()


def project_with_images(n=3):
    project = make_project(TaskType.CLASSIFICATION, classes=("boot",))
    images = [ImageFactory(project=project, width=300, height=200) for _ in range(n)]
    return project, images


def ask(client, project, images, what="cluster-names"):
    return client.post(f"/api/projects/{project.pk}/assist/{what}/", {"image_ids": [i.pk for i in images]},
                       format="json")


def test_it_is_off_by_default_and_says_so(api_client):
    project, images = project_with_images()
    lead = as_user(api_client, member(project, Role.LEAD))
    assert lead.get(f"/api/projects/{project.pk}/assist/").json()["enabled"] is False
    response = ask(lead, project, images)
    assert response.status_code == 409 and "off" in response.json()["detail"]
    assert not AssistRequest.objects.exists()


def test_a_good_reply_suggests_names_from_thumbnails_sent_as_data_urls(api_client, stand_in):
    project, images = project_with_images()
    user = member(project, Role.LEAD)
    lead = as_user(api_client, user)
    response = ask(lead, project, images)
    assert response.status_code == 200, response.content
    assert response.json()["suggestions"] == ["sneaker", "shoe"]
    sent = stand_in.requests[0]
    assert sent["auth"] == "Bearer sk-test-123" and sent["body"]["model"] == "tiny-vlm"
    parts = sent["body"]["messages"][1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(urls) == 3 and all(u.startswith("data:image/jpeg;base64,") for u in urls)
    assert "boot" in parts[0]["text"]  # the existing classes are named
    log = AssistRequest.objects.get(pk=response.json()["log_id"])
    assert (log.status, log.http_status, log.images, log.user.pk) == (AssistStatus.OK, 200, 3, user.pk)
    assert log.endpoint == stand_in.url and log.duration_ms >= 0
    assert "sk-test-123" not in json.dumps(list(AssistRequest.objects.values()), default=str)


def test_a_taxonomy_comes_back_as_a_tree(api_client, stand_in):
    project, images = project_with_images()
    stand_in.reply = "```json\n" + json.dumps({"taxonomy": [
        {"name": "footwear", "children": [{"name": "boot"}, {"name": "sneaker", "children": []}]},
        {"name": "bag"}]}) + "\n```"
    lead = as_user(api_client, member(project, Role.LEAD))
    body = ask(lead, project, images, "taxonomy").json()
    assert body["taxonomy"] == [
        {"name": "footwear", "children": [{"name": "boot", "children": []}, {"name": "sneaker", "children": []}]},
        {"name": "bag", "children": []}]


@pytest.mark.parametrize("reply, status, words", [
    ("slow", AssistStatus.TIMEOUT, "no reply within 0.5 s"),
    ("not json", AssistStatus.MALFORMED, "not a chat completion"),
    ("no choices", AssistStatus.MALFORMED, "not a chat completion"),
    ("Sure! Sneakers, I think.", AssistStatus.MALFORMED, "not the JSON asked for"),
    (json.dumps({"names": []}), AssistStatus.MALFORMED, '"names" list'),
    ("http 500", AssistStatus.HTTP_ERROR, "HTTP 500"),
])
def test_a_failed_exchange_answers_502_with_the_reason_and_changes_nothing_else(
        api_client, stand_in, reply, status, words):
    project, images = project_with_images()
    stand_in.reply = reply
    lead = as_user(api_client, member(project, Role.LEAD))
    classes_before = list(LabelClass.objects.values_list("id", "name"))
    started = time.monotonic()
    response = ask(lead, project, images)
    assert time.monotonic() - started < 5
    assert response.status_code == 502
    assert words in response.json()["detail"]
    log = AssistRequest.objects.get(pk=response.json()["log_id"])
    assert log.status == status and words in log.detail
    assert list(LabelClass.objects.values_list("id", "name")) == classes_before
    assert not Annotation.objects.exists()
    # the rest of the project works as before
    assert lead.get(f"/api/projects/{project.pk}/clusters/").status_code == 200
    assert lead.get(f"/api/projects/{project.pk}/").status_code == 200


def test_an_unreachable_endpoint_is_logged_as_such(api_client, stand_in, settings):
    stand_in.close()
    project, images = project_with_images(1)
    lead = as_user(api_client, member(project, Role.LEAD))
    response = ask(lead, project, images)
    assert response.status_code == 502 and "cannot connect" in response.json()["detail"]
    assert AssistRequest.objects.get().status == AssistStatus.UNREACHABLE


def test_requests_are_bounded_in_images_and_per_hour(api_client, stand_in, settings):
    settings.VISION_ASSIST_MAX_IMAGES = 2
    settings.VISION_ASSIST_REQUESTS_PER_HOUR = 1
    project, images = project_with_images(3)
    lead = as_user(api_client, member(project, Role.LEAD))
    too_many = ask(lead, project, images)
    assert too_many.status_code == 400 and "1-2 image ids" in too_many.json()["detail"]
    assert ask(lead, project, images[:2]).status_code == 200
    spent = ask(lead, project, images[:2])
    assert spent.status_code == 429 and "try again later" in spent.json()["detail"]
    assert len(stand_in.requests) == 1
    settings.VISION_ASSIST_MAX_REQUEST_BYTES = 100
    settings.VISION_ASSIST_REQUESTS_PER_HOUR = 10
    big = ask(lead, project, images[:1])
    assert big.status_code == 400 and "over the limit" in big.json()["detail"]


def test_an_unset_key_variable_is_named_and_nothing_is_sent(api_client, stand_in, monkeypatch):
    monkeypatch.delenv("VISION_TEST_ASSIST_KEY")
    project, images = project_with_images(1)
    lead = as_user(api_client, member(project, Role.LEAD))
    response = ask(lead, project, images)
    assert response.status_code == 409 and "VISION_TEST_ASSIST_KEY" in response.json()["detail"]
    assert stand_in.requests == []


def test_only_leads_ask_and_only_admins_read_the_log(api_client, stand_in):
    project, images = project_with_images(1)
    annotator = as_user(api_client, member(project))
    assert ask(annotator, project, images).status_code == 403
    lead = as_user(api_client, member(project, Role.LEAD))
    ask(lead, project, images)
    assert lead.get(f"/api/projects/{project.pk}/assist/log/").status_code == 403
    admin = as_user(api_client, member(project, Role.ADMIN))
    items = admin.get(f"/api/projects/{project.pk}/assist/log/").json()["items"]
    assert [(i["purpose"], i["status"]) for i in items] == [("cluster_names", "ok")]
