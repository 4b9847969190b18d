"""The browser's copy of an image: made on import when the original is large or in a format
browsers do not show, and made again from each privacy render."""
import io

from django.conf import settings
from PIL import Image as PILImage


def display_copy(image: PILImage.Image) -> bytes:
    """A JPEG for the browser, at most VISION_DISPLAY_MAX_SIDE on its longer side."""
    max_side = settings.VISION_DISPLAY_MAX_SIDE
    display = image.convert("RGB")
    display.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    out = io.BytesIO()
    display.save(out, "JPEG", quality=85)
    return out.getvalue()
