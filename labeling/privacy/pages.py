"""The admins' page of one image's blurred regions."""
from django.shortcuts import get_object_or_404

from core.models import Image

from ..pages import _page


def image_privacy(request, project_id: int, image_id: int):
    def extra(project):
        return {"image": get_object_or_404(Image.objects.only("id", "original_name"), pk=image_id, project=project)}

    # the settings page's role (admins) and its place in the navigation
    return _page("settings", "labeling/image_privacy.html", extra)(request, project_id)
