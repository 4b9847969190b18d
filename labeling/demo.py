"""Demo data from files that ship inside pip packages: deepforest's aerial tree photos
with hand-drawn boxes (detection) and scikit-learn's handwritten digits (classification).
Read by path; nothing is downloaded. Synthetic shapes stand in only when deepforest is
not installed."""
from __future__ import annotations

import importlib.util
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml.ElementTree as SafeET
import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

TILE = 400
# The classification demo's classes in the order its project lists them: each digit is
# also its class's key (see services.label_class_create).
CLASSIFICATION_CLASSES = [str(digit) for digit in range(10)]


@dataclass
class DemoImage:
    name: str
    png: bytes
    boxes: list[tuple[float, float, float, float, str]] = field(default_factory=list)
    label: str | None = None


def deepforest_data_dir() -> Path | None:
    spec = importlib.util.find_spec("deepforest")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    return data if data.is_dir() else None


def detection_images(limit: int = 60) -> Iterator[DemoImage]:
    """Tiles of deepforest's annotated photos, boxes clipped to each tile."""
    data = deepforest_data_dir()
    if data is None:
        yield from _synthetic_detection_images(limit)
        return
    count = 0
    for xml_path in sorted(data.glob("*.xml")):
        photo = xml_path.with_suffix(".png")
        if not photo.exists():
            continue
        boxes = _voc_boxes(xml_path)
        with PILImage.open(photo) as opened:
            rgb = opened.convert("RGB")
        for top in range(0, rgb.height - TILE + 1, TILE):
            for left in range(0, rgb.width - TILE + 1, TILE):
                tile_boxes = _clip_boxes(boxes, left, top)
                if not tile_boxes:
                    continue
                out = io.BytesIO()
                rgb.crop((left, top, left + TILE, top + TILE)).save(out, "PNG")
                yield DemoImage(name=f"{photo.stem}_{left}_{top}.png", png=out.getvalue(), boxes=tile_boxes)
                count += 1
                if count >= limit:
                    return


def _voc_boxes(xml_path: Path) -> list[tuple[float, float, float, float, str]]:
    root = SafeET.parse(xml_path).getroot()
    boxes = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "Tree").strip()
        bnd = obj.find("bndbox")
        if bnd is None:
            continue
        coords = [float(bnd.findtext(tag)) for tag in ("xmin", "ymin", "xmax", "ymax")]
        boxes.append((*coords, name))
    return boxes


def _clip_boxes(boxes, left: int, top: int) -> list[tuple[float, float, float, float, str]]:
    """Keep boxes whose larger part lies inside the tile, clipped to it."""
    kept = []
    for x1, y1, x2, y2, name in boxes:
        cx1, cy1 = max(x1 - left, 0), max(y1 - top, 0)
        cx2, cy2 = min(x2 - left, TILE), min(y2 - top, TILE)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        if (cx2 - cx1) * (cy2 - cy1) < 0.5 * (x2 - x1) * (y2 - y1):
            continue
        kept.append((cx1, cy1, cx2, cy2, name))
    return kept


def _synthetic_detection_images(limit: int) -> Iterator[DemoImage]:
    rng = random.Random(0)
    for index in range(limit):
        canvas = PILImage.new("RGB", (TILE, TILE), (40, 90, 40))
        draw = ImageDraw.Draw(canvas)
        boxes = []
        for _ in range(rng.randint(1, 5)):
            w, h = rng.randint(30, 90), rng.randint(30, 90)
            x, y = rng.randint(0, TILE - w), rng.randint(0, TILE - h)
            draw.ellipse((x, y, x + w, y + h), fill=(20, 140 + rng.randint(0, 60), 20))
            boxes.append((float(x), float(y), float(x + w), float(y + h), "Tree"))
        out = io.BytesIO()
        canvas.save(out, "PNG")
        yield DemoImage(name=f"synthetic_{index:03d}.png", png=out.getvalue(), boxes=boxes)


def classification_images(limit: int = 300) -> Iterator[DemoImage]:
    """scikit-learn's 8x8 handwritten digits (real scans), scaled up for viewing."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index in range(min(limit, len(digits.images))):
        pixels = (digits.images[index] / 16.0 * 255).astype(np.uint8)
        image = PILImage.fromarray(255 - pixels, mode="L").resize((64, 64), PILImage.Resampling.BILINEAR)
        out = io.BytesIO()
        image.save(out, "PNG")
        yield DemoImage(name=f"digit_{index:04d}.png", png=out.getvalue(), label=str(digits.target[index]))
