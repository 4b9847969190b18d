"""Site-level views: access-checked media and the JSON error answers under /api/ (health checks live in health.py)."""
import mimetypes
import re

from django.contrib.auth.views import redirect_to_login
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, JsonResponse
from django.views import defaults

from core.models import Project
from labeling.models import Role
from labeling.permissions import caller_role
from labeling.privacy.selectors import media_withheld

from .media_access import MediaRefused, media_caller

_PROJECT_MEDIA = re.compile(r"^projects/(\d+)/")


def _served_elsewhere(path: str, project_id: int) -> bool:
    """Export zips go to leads through the export job's download view only."""
    return path.startswith(f"projects/{project_id}/exports/")


def protected_media(request, path: str):
    """Media files belong to a project; only its members may read them (signed in, by
    token or by a signed link: see media_access)."""
    try:
        user = media_caller(request, path)
    except MediaRefused as exc:
        return JsonResponse({"detail": str(exc)}, status=401, headers={"WWW-Authenticate": "Token"})
    if user is None:
        return redirect_to_login(request.get_full_path())
    match = _PROJECT_MEDIA.match(path)
    if match is None or ".." in path.split("/"):
        raise Http404("No such file.")
    project = Project.objects.annotate(role=caller_role(user)).filter(pk=int(match.group(1))).first()
    if project is None or project.role is None:
        raise Http404("No such file.")
    if path.startswith(f"projects/{project.pk}/models/") and project.role != Role.ADMIN:
        raise Http404("No such file.")
    # originals go only through the logged original endpoint; exports only to leads, by their view
    if media_withheld(path, project.pk) or _served_elsewhere(path, project.pk):
        raise Http404("No such file.")
    if not default_storage.exists(path):
        raise Http404("No such file.")
    content_type, _ = mimetypes.guess_type(path)
    response = FileResponse(default_storage.open(path, "rb"), content_type=content_type or "application/octet-stream")
    response["Cache-Control"] = "private, max-age=86400"
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request, exception):
    """Unknown URLs under /api/ answer JSON, as every API error does; pages stay HTML."""
    if _is_api(request):
        return JsonResponse({"detail": f"No API endpoint at {request.path}."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"detail": "Server error; it has been logged."}, status=500)
    return defaults.server_error(request)
