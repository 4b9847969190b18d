"""The box assist (labeling/segment_assist.py, OpenCV GrabCut) on a real photo: IoU of its
polygon with a reference mask, and its latency.

    .venv/bin/python bench/bench_grabcut.py [--margin 4] [--repeats 3] [--no-record]

Photo: scikit-image's `coins` (a 303x384 greyscale photo of 24 coins on a dark ground, shipped
with the package; nothing is downloaded). Reference masks: scikit-image's own region-based
segmentation of that photo, as in its gallery example "Comparing edge-based and region-based
segmentation" (Sobel elevation map, markers below 30 = ground and above 150 = coin, watershed,
holes filled, connected components); coins cut by the image border are left out. It is a
classical segmentation, not a hand-drawn truth: where it errs, the IoU measures agreement
with it. The box per coin is the reference's bounding box grown by --margin px, as an
annotator's loose box. Rows: the photo as it ships, and upscaled 4x (1212x1536; the assist then
works on a downscaled copy) with the reference upscaled the same way. Latency: the assist's call
(GrabCut, contour, simplification), image decoding excluded; the median of --repeats per coin.
Prints a table and appends it to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from skimage import data, filters, measure, segmentation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labeling.segment_assist import Box, polygon_from_box  # noqa: E402


def reference_coins() -> tuple[np.ndarray, list[np.ndarray]]:
    coins = data.coins()
    markers = np.zeros_like(coins)
    markers[coins < 30] = 1
    markers[coins > 150] = 2
    regions = segmentation.watershed(filters.sobel(coins), markers)
    filled = ndimage.binary_fill_holes(regions - 1)
    labelled = measure.label(filled)
    masks = []
    for region in measure.regionprops(labelled):
        y1, x1, y2, x2 = region.bbox
        touches_border = y1 == 0 or x1 == 0 or y2 == coins.shape[0] or x2 == coins.shape[1]
        if region.area >= 200 and not touches_border:
            masks.append((labelled == region.label).astype(np.uint8))
    return coins, masks


def mask_iou(points: list[list[float]], truth: np.ndarray) -> float:
    drawn = np.zeros_like(truth)
    cv2.fillPoly(drawn, [np.round(np.array(points)).astype(np.int32)], 1)
    return float((drawn & truth).sum() / (drawn | truth).sum())


def run(image: np.ndarray, masks: list[np.ndarray], margin: float, repeats: int) -> dict:
    ious, latencies, vertices = [], [], []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        box = Box(max(0.0, xs.min() - margin), max(0.0, ys.min() - margin),
                  min(float(image.shape[1]), xs.max() + 1 + margin), min(float(image.shape[0]), ys.max() + 1 + margin))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            points = polygon_from_box(image, box)
            times.append(time.perf_counter() - start)
        latencies.append(statistics.median(times) * 1000)
        ious.append(mask_iou(points, mask))
        vertices.append(len(points))
    return {
        "coins": len(masks), "iou_mean": statistics.mean(ious), "iou_median": statistics.median(ious),
        "iou_min": min(ious), "share_09": sum(i >= 0.9 for i in ious) / len(ious),
        "ms_median": statistics.median(latencies), "ms_max": max(latencies),
        "vertices": statistics.median(vertices),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--margin", type=float, default=4.0, help="px added around each coin's box (original scale)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    coins, masks = reference_coins()
    rows = [("coins 303x384", run(coins, masks, args.margin, args.repeats))]
    big = cv2.resize(coins, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    big_masks = [cv2.resize(m, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST) for m in masks]
    rows.append(("coins x4 1212x1536", run(big, big_masks, args.margin * 4, args.repeats)))
    lines = [
        "| photo | coins | IoU mean | IoU median | IoU min | share IoU >= 0.9 | vertices (median) | ms median | ms max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(f"| {name} | {r['coins']} | {r['iou_mean']:.3f} | {r['iou_median']:.3f} | {r['iou_min']:.3f} | "
                     f"{r['share_09']:.0%} | {r['vertices']:.0f} | {r['ms_median']:.1f} | {r['ms_max']:.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.no_record:
        return
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = ".venv/bin/python bench/bench_grabcut.py " + shlex.join(sys.argv[1:])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    entry = (
        f"\n## Box assist (GrabCut) on a real photo, {date}\n\n"
        f"- machine: 2-core AMD EPYC, shared ({platform.machine()}, OpenCV {cv2.__version__}); "
        f"load average at the end {load}\n"
        f"- date: {date}\n- command: `{command.strip()}`\n"
        "- photo: scikit-image's `coins`; reference: scikit-image's gallery watershed segmentation of it "
        "(not hand-drawn), coins cut by the border left out; box: the reference's bounding box "
        f"+ {args.margin:g} px\n\n{table}\n"
    )
    with open(ROOT / "bench" / "RESULTS.md", "a") as handle:
        handle.write(entry)
    print(f"appended to {ROOT / 'bench' / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
