"""Privacy blurring reads: what the media view withholds and what the admin's region view shows."""
from __future__ import annotations

import mimetypes

from django.db.models import Q
from django.urls import reverse

from core.models import Image

from ..models import BlurRegion, BlurState, ImageBlur
from ..queue.selectors import image_urls


def media_withheld(path: str, project_id: int) -> bool:
    """True for a stored file no media URL may serve, whoever asks: a kept original (admins open
    it through the original endpoint, which logs each look) and the file of an image still
    waiting for its blur (it is the sharp original). Asked only for image and display paths; the
    waiting rows are a small partial index."""
    folder = f"projects/{project_id}/"
    if path.startswith(folder + "originals/"):
        return True
    if not path.startswith((folder + "images/", folder + "display/")):
        return False
    return ImageBlur.objects.filter(state=BlurState.PENDING, image__project_id=project_id).filter(
        Q(image__file=path) | Q(image__display_file=path)).exists()


def content_type_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def image_blur_view(*, image: Image) -> dict:
    """An image's blur as the admin's region view shows it: its state, every region (removed
    ones too), the served (blurred) URLs and the original's endpoint, when one is kept."""
    blur = ImageBlur.objects.filter(pk=image.pk).first()
    regions = BlurRegion.objects.filter(image=image)
    state = blur.state if blur else "not_blurred"
    original_kept = blur is None or blur.state == BlurState.PENDING or bool(blur.original)
    return {
        "image": {"id": image.pk, "name": image.original_name, "width": image.width, "height": image.height,
                  **image_urls(image)},
        "state": state,
        "renders": blur.renders if blur else 0,
        "rendered_at": blur.rendered_at if blur else None,
        "error": blur.error if blur else "",
        "original_kept": original_kept,
        "original_url": reverse("image-original", args=[image.pk]) if original_kept else None,
        "regions": [
            {"id": r.pk, "x1": r.x1, "y1": r.y1, "x2": r.x2, "y2": r.y2, "source": r.source, "label": r.label,
             "score": r.score, "removed": r.removed}
            for r in regions
        ],
    }
