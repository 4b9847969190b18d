"""Site-level views: health check and access-checked media."""
import mimetypes
import re

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db import connection
from django.http import FileResponse, Http404, JsonResponse

from labeling.models import Project, Role
from labeling.permissions import caller_role

_PROJECT_MEDIA = re.compile(r"^projects/(\d+)/")


def _served_elsewhere(path: str, project_id: int) -> bool:
    """Export zips go to leads through the export job's download view only."""
    return path.startswith(f"projects/{project_id}/exports/")


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@login_required
def protected_media(request, path: str):
    """Media files belong to a project; only its members may read them."""
    match = _PROJECT_MEDIA.match(path)
    if match is None or ".." in path.split("/"):
        raise Http404("No such file.")
    project = Project.objects.annotate(role=caller_role(request.user)).filter(pk=int(match.group(1))).first()
    if project is None or project.role is None:
        raise Http404("No such file.")
    if path.startswith(f"projects/{project.pk}/models/") and project.role != Role.ADMIN:
        raise Http404("No such file.")
    if _served_elsewhere(path, project.pk):
        raise Http404("No such file.")
    if not default_storage.exists(path):
        raise Http404("No such file.")
    content_type, _ = mimetypes.guess_type(path)
    response = FileResponse(default_storage.open(path, "rb"), content_type=content_type or "application/octet-stream")
    response["Cache-Control"] = "private, max-age=86400"
    return response
