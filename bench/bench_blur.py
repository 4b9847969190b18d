"""Privacy blurring throughput on the CPU (images/s): face detection (MTCNN, and OpenCV's Haar
cascade where the installed wheel ships it), the blur itself (Gaussian, pixelate) and the whole
render of one image as a blur run does it (decode, detect, blur, PNG encode), at a few sizes.

    .venv/bin/python bench/bench_blur.py [--sizes 512,1024,2048] [--images 4] [--repeats 3]
        [--threads 0] [--no-record]

The Haar rows need an OpenCV 4.x wheel (5.x ships no cascades); one kept outside the venv works:
`pip install --no-deps --target /tmp/cv4 opencv-python-headless==4.12.0.88`, then run with
PYTHONPATH=/tmp/cv4. Without it those rows are left out and the table says why.

Images: scikit-image's astronaut (a 512x512 photo with one face), resized to each size, kept as
PNG bytes like a stored upload. Each figure is the median of --repeats timed passes over
--images images after one warm-up pass. Prints a table and appends it to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import io
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import skimage.data  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.bench_embed import machine  # noqa: E402
from labeling.privacy.blur import blur_boxes  # noqa: E402
from labeling.privacy.detectors import FACE_DETECTORS, face_detector  # noqa: E402


def photo(size: int) -> bytes:
    image = Image.fromarray(skimage.data.astronaut()).resize((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def rate(work: Callable[[], None], images: int, repeats: int) -> float:
    """Images per second: the median of `repeats` timed passes after a warm-up pass."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return images / statistics.median(times)


def render(data: bytes, detector, method: str) -> bytes:
    """What a blur run does per image: decode, detect, blur, encode the lossless render."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    boxes = [d.box for d in detector.detect(image)]
    out = io.BytesIO()
    blur_boxes(image, boxes, method=method, strength=60, padding=0.15).save(out, "PNG")
    return out.getvalue()


def detect_all(detector, image: Image.Image, count: int) -> None:
    for _ in range(count):
        detector.detect(image)


def blur_all(image: Image.Image, boxes, method: str, count: int) -> None:
    for _ in range(count):
        blur_boxes(image, boxes, method=method, strength=60)


def render_all(data: bytes, detector, method: str, count: int) -> None:
    for _ in range(count):
        render(data, detector, method)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1024,2048")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 leaves torch's default")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    load_before = os.getloadavg()[0]
    detectors, skipped = {}, []
    for name, cls in FACE_DETECTORS.items():
        problem = cls.available()
        if problem:
            skipped.append(f"{name}: {problem}")
        else:
            detectors[name] = face_detector(name, fallback=False)
    rows = []
    for size in sizes:
        data = photo(size)
        image = Image.open(io.BytesIO(data)).convert("RGB")
        for name, detector in detectors.items():
            boxes = [f.box for f in detector.detect(image)]
            detect_rate = rate(functools.partial(detect_all, detector, image, args.images), args.images,
                               args.repeats)
            for method in ("gaussian", "pixelate"):
                blur_rate = rate(functools.partial(blur_all, image, boxes, method, args.images), args.images,
                                 args.repeats)
                render_rate = rate(functools.partial(render_all, data, detector, method, args.images),
                                   args.images, args.repeats)
                rows.append((f"{size}x{size}", name, len(boxes), method, detect_rate, blur_rate, render_rate))
                print(*rows[-1], flush=True)
    header = ("| image | detector | faces found | blur | detect img/s | blur img/s | whole render img/s |\n"
              "|---|---|---|---|---|---|---|")
    table = "\n".join([header] + [
        f"| {image} | {det} | {faces} | {method} | {d:.2f} | {b:.1f} | {r:.2f} |"
        for image, det, faces, method, d, b, r in rows])
    import cv2

    notes = f"\n- OpenCV {cv2.__version__} ({cv2.__file__})" + "".join(f"\n- not measured, {line}" for line in skipped)
    prefix = f"PYTHONPATH={os.environ['PYTHONPATH']} " if os.environ.get("PYTHONPATH") else ""
    command = prefix + ".venv/bin/python bench/bench_blur.py " + shlex.join(sys.argv[1:])
    load = f"1-minute load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    section = (
        "\n## Privacy blurring throughput (CPU)\n\n"
        f"- machine: 2-core AMD EPYC, shared ({machine()}); torch threads {torch.get_num_threads()}; {load}\n"
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- command: `{command.strip()}`\n"
        f"- images: scikit-image's astronaut resized to each size, PNG bytes; median of {args.repeats} passes "
        f"over {args.images} images after a warm-up; whole render = decode + detect + blur + PNG encode"
        f"{notes}\n\n{table}\n"
    )
    print(section)
    if not args.no_record:
        with open(ROOT / "bench" / "RESULTS.md", "a") as results:
            results.write(section)


if __name__ == "__main__":
    main()
