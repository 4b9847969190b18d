"""Real labeled data for the benchmarks, read from installed packages (nothing is downloaded).

- deepforest's aerial tree photos with their Pascal VOC boxes (the pip package
  deepforest, installed by `make install`), cut into square tiles.
- Fashion-MNIST from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
"""
from __future__ import annotations

import gzip
import importlib.util
import random
from pathlib import Path

import numpy as np
from defusedxml import ElementTree
from PIL import Image

from ml.base import Item

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def deepforest_data_dir() -> Path:
    spec = importlib.util.find_spec("deepforest")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("deepforest is not installed: pip install --no-deps deepforest==2.1.0")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _voc_boxes(xml_path: Path) -> list[tuple[float, float, float, float]]:
    root = ElementTree.parse(xml_path).getroot()
    return [
        tuple(float(obj.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        for obj in root.iter("object")
    ]


def deepforest_tiles(out_dir: Path, *, tile: int = 400, stride: int = 200, limit: int | None = None) -> list[Item]:
    """Overlapping JPEG tiles of the labeled deepforest photos, each with the boxes whose centre
    falls inside it (clipped to the tile). Deterministic; reuses tiles already written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    for xml in sorted(deepforest_data_dir().glob("*.xml")):
        photo = next((p for p in (xml.with_suffix(".png"), xml.with_suffix(".tif")) if p.exists()), None)
        if photo is None:
            continue
        boxes = _voc_boxes(xml)
        with Image.open(photo) as im:
            rgb = im.convert("RGB")
        w, h = rgb.size
        for top in range(0, max(1, h - tile + 1), stride):
            for left in range(0, max(1, w - tile + 1), stride):
                path = out_dir / f"{xml.stem}_{left}_{top}.jpg"
                if not path.exists():
                    rgb.crop((left, top, left + tile, top + tile)).save(path, quality=92)
                inside = []
                for x1, y1, x2, y2 in boxes:
                    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                    if left <= cx < left + tile and top <= cy < top + tile:
                        inside.append((max(x1 - left, 0), max(y1 - top, 0), min(x2 - left, tile),
                                       min(y2 - top, tile), 0))
                items.append(Item(str(path), tile, tile, boxes=tuple(inside)))
    random.Random(0).shuffle(items)
    return items[:limit] if limit else items


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist(out_dir: Path, *, split: str = "train", limit: int | None = None, seed: int = 0) -> list[Item]:
    """Fashion-MNIST images as PNG files with their labels (a seeded random subset when limited)."""
    if not FASHION_DIR.is_dir():
        raise SystemExit("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
    prefix = "train" if split == "train" else "t10k"
    images = _idx(FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz")
    labels = _idx(FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz")
    order = np.random.default_rng(seed).permutation(len(labels))[:limit]
    folder = out_dir / split
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in order.tolist():
        path = folder / f"{i:05d}.png"
        if not path.exists():
            Image.fromarray(images[i]).save(path)
        items.append(Item(str(path), 28, 28, label=int(labels[i])))
    return items
