"""A client generated from our OpenAPI schema by openapi-python-client imports whole and
does a script's day against the live server: sign in with a token, list projects, take
the next task, submit a label and download the image it was handed."""

import importlib
import pkgutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from labeling.models import Annotation, Role
from tests.factories import LabelClassFactory, MembershipFactory, TaskFactory

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
CONFIG = """post_hooks: []
package_name_override: vision_client
content_type_overrides:
  application/zip: application/octet-stream
"""


@pytest.fixture
def generated_client(tmp_path, db):
    schema = tmp_path / "schema.yaml"
    call_command("spectacular", file=str(schema))
    (tmp_path / "config.yaml").write_text(CONFIG)
    result = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(schema), "--output-path", str(tmp_path / "vision_client"),
         "--meta", "none", "--config", str(tmp_path / "config.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout  # every operation was generated
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("vision_client")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "vision_client" or m.startswith("vision_client.")]:
            del sys.modules[name]


@pytest.mark.django_db(transaction=True)
def test_a_generated_client_imports_whole_and_lists_takes_and_submits(generated_client, live_server):
    modules = [info.name for info in pkgutil.walk_packages(generated_client.__path__, "vision_client.")]
    for name in modules:
        importlib.import_module(name)
    assert len(modules) > 100

    task = TaskFactory()
    tree = LabelClassFactory(project=task.project, name="tree")
    annotator = MembershipFactory(project=task.project, role=Role.ANNOTATOR).user
    key = Token.objects.create(user=annotator).key

    from vision_client import AuthenticatedClient
    from vision_client.api.projects import projects_list, projects_tasks_next_retrieve
    from vision_client.api.tasks import tasks_annotations_create
    from vision_client.models import AnnotationSubmitInputRequest, KindEnum

    client = AuthenticatedClient(base_url=live_server.url, token=key, prefix="Token")
    page = projects_list.sync(client=client, limit=10)
    assert page.count == 1 and [p.id for p in page.results] == [task.project.pk]

    work = projects_tasks_next_retrieve.sync(project_id=task.project.pk, client=client)
    assert work["task"]["id"] == task.pk
    image = client.get_httpx_client().get(work["image"]["url"])
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"

    box = {"x1": 1, "y1": 2, "x2": 30, "y2": 40, "label": tree.pk}
    body = AnnotationSubmitInputRequest(kind=KindEnum.CORRECT, payload={"boxes": [box]})
    submitted = tasks_annotations_create.sync_detailed(
        task_id=task.pk, client=client, body=body, idempotency_key=str(uuid.uuid4())
    )
    assert submitted.status_code == 201, submitted.content
    assert submitted.parsed.image_id == task.image_id
    stored = Annotation.objects.get(task=task)
    assert stored.author == annotator and stored.payload["boxes"][0]["label"] == tree.pk
