"""A lead's pages beyond review: the image browser and one image opened in the editor."""
from django.shortcuts import get_object_or_404

from core.models import Image, Split

from .models import Membership
from .pages import _label_classes, _page


def _browser_context(project) -> dict:
    annotators = (Membership.objects.filter(project=project).order_by("user__username")
                  .values_list("user__username", flat=True))
    return {"label_classes": _label_classes(project), "annotators": list(annotators), "splits": Split.choices}


images = _page("images", "labeling/images.html", _browser_context)


def image_edit(request, project_id: int, image_id: int):
    """The editor on one image of the project, for a lead: no task and no lease, so the
    annotators' queue is as it was; saving stores the lead's label (see review.label_fix)."""
    def extra(project):
        return {"image": get_object_or_404(Image.objects.only("id", "original_name"), pk=image_id, project=project)}

    return _page("images", "labeling/image_edit.html", extra)(request, project_id)
