"""Schemathesis drives every operation of /api/schema/ with generated inputs as an admin,
a lead and an annotator of a real project: no answer is a server error, and every
answer the schema documents has the documented shape and content type.

Path ids point at the project's real rows (the generated ones would all be 404s), so the
generated bodies and query strings reach validation and the services behind it. Bounded:
a few examples per operation, derandomized, so a run takes about a minute or two."""

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from labeling.models import Annotation, ExportJob, ImportJob, Role
from tests.factories import LabelClassFactory, MembershipFactory, TaskFactory


def _load_schema():
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = get_wsgi_application()
    return loaded


schema = _load_schema()
ROLES = (Role.ADMIN, Role.LEAD, Role.ANNOTATOR)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def _connection_kept_open():
    """The WSGI app closes the database connection after each request; the test's
    transaction lives on it (Django's test client unhooks the same two signals)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, _connection_kept_open):
    """A detection project with a class, a queued image, a label, a job of each kind and
    one member per role; path ids and tokens to reach them."""
    task = TaskFactory()
    project = task.project
    tree = LabelClassFactory(project=project, name="tree")
    members = {role: MembershipFactory(project=project, role=role).user for role in ROLES}
    annotation = Annotation.objects.create(
        project=project, image=task.image, author=members[Role.LEAD], kind="correct",
        payload={"boxes": [{"x1": 1.0, "y1": 1.0, "x2": 9.0, "y2": 9.0, "label": tree.pk}]},
    )
    ids = {
        "project_id": project.pk,
        "task_id": task.pk,
        "image_id": task.image_id,
        "annotation_id": annotation.pk,
        "class_id": tree.pk,
        "user_id": members[Role.ANNOTATOR].pk,
        "import-jobs": ImportJob.objects.create(project=project, source_path="/nonexistent").pk,
        "export-jobs": ExportJob.objects.create(project=project, format="coco").pk,
    }
    tokens = {role: Token.objects.create(user=user).key for role, user in members.items()}
    return ids, tokens


def _aim_at_real_rows(case, ids) -> None:
    for name in list(case.path_parameters or {}):
        if name == "job_id":
            kind = "import-jobs" if "/import-jobs/" in case.path else "export-jobs"
            case.path_parameters[name] = ids[kind]
        elif name in ids:
            case.path_parameters[name] = ids[name]


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_without_a_server_error_and_as_documented(case, world):
    ids, tokens = world
    _aim_at_real_rows(case, ids)
    for role in ROLES:
        response = case.call(headers={"Authorization": f"Token {tokens[role]}"})
        case.validate_response(response, checks=CHECKS)
