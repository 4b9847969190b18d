"""Site-level views: health check and access-checked media."""
import mimetypes
import re

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db import connection
from django.http import FileResponse, Http404, JsonResponse

from labeling.models import Project, Role
from labeling.permissions import caller_role
from labeling.privacy.selectors import media_withheld

_PROJECT_MEDIA = re.compile(r"^projects/(\d+)/")


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
    if media_withheld(path, project.pk):  # originals go only through the logged original endpoint
        raise Http404("No such file.")
    if not default_storage.exists(path):
        raise Http404("No such file.")
    content_type, _ = mimetypes.guess_type(path)
    response = FileResponse(default_storage.open(path, "rb"), content_type=content_type or "application/octet-stream")
    response["Cache-Control"] = "private, max-age=86400"
    return response
