"""Every endpoint x every kind of caller: the answer's status class is the one its role rule
says. The URL resolver is walked, so an endpoint added without a row in ACCESS fails here.

Callers: anonymous, a signed-in stranger, a member of another project, and the project's
annotator, lead and admin (a project admin, not staff). Each request runs inside a savepoint
that is rolled back, so every caller meets the same rows."""
from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from core.models import JobStatus, LabelClass, ModelVersion
from labeling.models import Annotation, BlurRegion, BlurRun, ExportJob, ImportJob, Role
from reports.selectors import REPORTS
from tests.factories import ImageFactory, MembershipFactory, ProjectFactory, TaskFactory, UserFactory
from training.models import EmbeddingRun, NearDuplicate, PrelabelRun, TrainingRun

pytestmark = pytest.mark.django_db

CALLERS = ("anonymous", "stranger", "other_project", "annotator", "lead", "admin")
RANK = {"annotator": 1, "lead": 2, "admin": 3}

# Who may use each route: "public" (anyone), "user" (anyone signed in), "staff", or the least
# project role. Names are the URL names; None keys a method the route does not have.
ACCESS: dict[str, dict[str, str]] = {
    "healthz": {"GET": "public"},
    "readyz": {"GET": "public"},
    "metrics": {"GET": "public"},  # loopback callers (as here) or a token: the network is the guard
    "api-token": {"POST": "public", "DELETE": "user"},
    "api-schema": {"GET": "user"},
    "api-docs": {"GET": "user"},
    "account": {"GET": "user"},
    "account-token-revoke": {"POST": "user"},
    "home": {"GET": "user"},
    "page-project-new": {"GET": "staff", "POST": "staff"},
    "project-list": {"GET": "user", "POST": "staff"},
    "project-detail": {"GET": "annotator", "PATCH": "admin"},
    "labelclass-list": {"GET": "annotator", "POST": "admin"},
    "labelclass-detail": {"PATCH": "admin", "DELETE": "admin"},
    "labelclass-tree": {"GET": "annotator"},
    "labelclass-history": {"GET": "lead"},
    "labelclass-merge": {"POST": "admin"},
    "member-list": {"GET": "lead", "POST": "admin"},
    "member-detail": {"PATCH": "admin", "DELETE": "admin"},
    "task-next": {"GET": "annotator"},
    "task-batch": {"GET": "annotator"},
    "segment-assist": {"POST": "annotator"},
    "project-stats": {"GET": "annotator"},
    "annotation-review-list": {"GET": "lead"},
    "task-heartbeat": {"POST": "annotator"},
    "task-release": {"POST": "annotator"},
    "annotation-submit": {"POST": "annotator"},
    "annotation-review": {"POST": "lead"},
    "annotation-bulk-review": {"POST": "lead"},
    "annotation-fix": {"POST": "lead"},
    "image-browser": {"GET": "lead"},
    "image-work": {"GET": "lead"},
    "image-label": {"POST": "lead"},
    "image-import": {"POST": "lead"},
    "import-job-list": {"GET": "lead"},
    "import-job-detail": {"GET": "lead"},
    "import-job-cancel": {"POST": "lead"},
    "export": {"GET": "lead"},
    "export-job-detail": {"GET": "lead"},
    "export-job-download": {"GET": "lead"},
    "export-job-cancel": {"POST": "lead"},
    "privacy-settings": {"GET": "lead", "PATCH": "admin"},
    "blur-run-list": {"GET": "admin", "POST": "admin"},
    "original-access-list": {"GET": "admin"},
    "blur-run-detail": {"GET": "admin"},
    "blur-run-cancel": {"POST": "admin"},
    "image-blur": {"GET": "admin"},
    "blur-region-create": {"POST": "admin"},
    "blur-region-detail": {"PATCH": "admin"},
    "image-original": {"GET": "admin"},
    "report": {"GET": "lead"},
    "trainingrun-list": {"GET": "lead", "POST": "admin"},
    "trainingrun-detail": {"GET": "lead"},
    "trainingrun-cancel": {"POST": "admin"},
    "modelversion-list": {"GET": "lead"},
    "modelversion-deploy": {"POST": "admin"},
    "prelabel-start": {"POST": "admin"},
    "prelabelrun-detail": {"GET": "lead"},
    "prelabelrun-cancel": {"POST": "admin"},
    "embeddingrun-start": {"POST": "admin"},
    "embeddingrun-detail": {"GET": "lead"},
    "embeddingrun-cancel": {"POST": "admin"},
    "training-curves": {"GET": "lead"},
    "classexample-list": {"GET": "lead"},
    "classexample-set": {"PUT": "lead"},
    "proposals": {"GET": "annotator", "POST": "lead"},
    "image-similar": {"GET": "annotator"},
    "nearduplicate-list": {"GET": "lead"},
    "nearduplicate-dismiss": {"POST": "lead"},
    "clusters": {"GET": "lead"},
    "bulk-labels": {"POST": "annotator"},  # naming a new class asks for a lead on top
    "assist-status": {"GET": "lead"},
    "assist-cluster-names": {"POST": "lead"},
    "assist-taxonomy": {"POST": "lead"},
    "assist-log": {"GET": "admin"},
    "page-annotate": {"GET": "annotator"},
    "page-review": {"GET": "lead"},
    "page-images": {"GET": "lead"},
    "page-image-edit": {"GET": "lead"},
    "page-upload": {"GET": "lead"},
    "page-reports": {"GET": "lead"},
    "page-models": {"GET": "lead"},
    "page-settings": {"GET": "admin"},
    "page-export": {"GET": "lead"},
    "page-taxonomy": {"GET": "admin"},
    "page-clusters": {"GET": "lead"},
    "page-annotate-grid": {"GET": "annotator"},
    "page-image-privacy": {"GET": "admin"},
}
# Django's own sites guard themselves (the admin: staff; accounts: the sign-in pages), and the
# media view is checked below per kind of file.
NOT_WALKED = ("admin/", "accounts/", "media/")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def _methods(name: str, callback) -> list[str]:
    """A class view's methods; a function view's are those its row lists (GET when it has none)."""
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is not None:
        return [m for m in METHODS if hasattr(view_class, m.lower())]
    return list(ACCESS.get(name, {"GET": ""}))


def routes() -> list[tuple[str, str, str]]:
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(NOT_WALKED):
            continue
        name = pattern.name or route
        for method in _methods(name, pattern.callback):
            found.append((name, route, method))
    return found


def test_every_route_has_a_role_rule():
    walked = {(name, method) for name, _, method in routes()}
    listed = {(name, method) for name, methods in ACCESS.items() for method in methods}
    assert walked - listed == set(), "routes without a row in ACCESS"
    assert listed - walked == set(), "rows in ACCESS for routes that do not exist"


@pytest.fixture
def world():
    project, elsewhere = ProjectFactory(), ProjectFactory()
    users = {role: MembershipFactory(project=project, role=role).user
             for role in (Role.ANNOTATOR, Role.LEAD, Role.ADMIN)}
    users["stranger"] = UserFactory()
    users["other_project"] = MembershipFactory(project=elsewhere, role=Role.ADMIN).user
    label_class = LabelClass.objects.create(project=project, name="car", hotkey="c")
    image = ImageFactory(project=project)
    task = TaskFactory(image=image)
    annotation = Annotation.objects.create(project=project, image=image, task=task, author=users["annotator"],
                                           kind="correct", payload={"boxes": []})
    weights = default_storage.save(f"projects/{project.pk}/models/v1.pt", ContentFile(b"weights"))
    version = ModelVersion.objects.create(project=project, number=1, backend="yolo", weights=weights,
                                          class_ids=[label_class.pk])
    export_file = default_storage.save(f"projects/{project.pk}/exports/1-secret-coco.zip", ContentFile(b"PK"))
    ids = {
        "project_id": project.pk, "class_id": label_class.pk, "user_id": users[Role.ANNOTATOR].pk,
        "task_id": task.pk, "annotation_id": annotation.pk, "image_id": image.pk, "version_id": version.pk,
        "name": next(iter(REPORTS)),
        "import-job": ImportJob.objects.create(project=project, source_path="/nowhere").pk,
        "export-job": ExportJob.objects.create(project=project, format="coco", status=JobStatus.SUCCEEDED,
                                               result_file=export_file).pk,
        "trainingrun": TrainingRun.objects.create(project=project).pk,
        "prelabelrun": PrelabelRun.objects.create(project=project, model_version=version).pk,
        "embeddingrun": EmbeddingRun.objects.create(project=project, model_key="m").pk,
        "blur-run": BlurRun.objects.create(project=project).pk,
        "region_id": BlurRegion.objects.create(image=image, x1=1, y1=1, x2=5, y2=5, source="manual").pk,
        "duplicate_id": NearDuplicate.objects.create(project=project, image=image, duplicate_of=ImageFactory(
            project=project), similarity=0.99).pk,
    }
    media = {"image": image.file.name, "display": image.file.name, "weights": weights, "export": export_file}
    return users, ids, media


def _url(name: str, route: str, ids: dict) -> str:
    def value(match):
        key = match.group(2)
        if key in ("job_id", "run_id"):
            key = next(prefix for prefix in ("import-job", "export-job", "trainingrun", "prelabelrun",
                                             "embeddingrun", "blur-run") if name.startswith(prefix))
        return str(ids[key])

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


def expected_class(rule: str, caller: str, is_page: bool) -> str:
    """'ok' (any answer but a refusal), or the refusal: 'login', 'forbidden', 'hidden' (404)."""
    if rule == "public":
        return "ok"
    if caller == "anonymous":
        return "login"
    if rule in ("user",):
        return "ok"
    if rule == "staff":
        return "forbidden"
    if caller in ("stranger", "other_project"):
        return "hidden"
    return "ok" if RANK[caller] >= RANK[rule] else "forbidden"


def status_class(status: int, location: str, is_page: bool) -> str:
    if status >= 500:
        return f"server error {status}"
    if status in (401, 403) and not is_page:
        return "login" if status == 401 else "forbidden"
    if status == 302 and "/accounts/login/" in location:
        return "login"
    return {403: "forbidden", 404: "hidden"}.get(status, "ok")


def _request(client: Client, method: str, url: str):
    with transaction.atomic():
        response = client.generic(method, url, data="{}", content_type="application/json")
        transaction.set_rollback(True)
    return response


def test_every_endpoint_answers_each_caller_by_its_role(world):
    users, ids, _ = world
    wrong = []
    for name, route, method in routes():
        is_page = not route.startswith("api/")
        for caller in CALLERS:
            client = Client(raise_request_exception=False)
            if caller != "anonymous":
                client.force_login(users[caller])
            response = _request(client, method, _url(name, route, ids))
            expected = expected_class(ACCESS[name][method], caller, is_page)
            got = status_class(response.status_code, response.get("Location", ""), is_page)
            # API refusals of the anonymous are 401 or 403 (session auth answers 403).
            if expected == "login" and not is_page and response.status_code in (401, 403):
                got = "login"
            if got != expected:
                wrong.append(f"{method} /{route} as {caller}: {response.status_code} ({got}), expected {expected}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("kind, least", [("image", "annotator"), ("display", "annotator"), ("weights", "admin"),
                                         ("export", None)])
def test_media_files_answer_each_caller_by_their_kind(world, kind, least):
    users, _, media = world
    for caller in CALLERS:
        client = Client(raise_request_exception=False)
        if caller != "anonymous":
            client.force_login(users[caller])
        response = client.get(f"/media/{media[kind]}")
        if caller == "anonymous":
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], (kind, caller)
        elif least is not None and caller in RANK and RANK[caller] >= RANK[least]:
            assert response.status_code == 200, (kind, caller)
        else:
            assert response.status_code == 404, (kind, caller, response.status_code)
