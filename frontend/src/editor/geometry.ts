/**
 * Editor geometry. Boxes always live in original-image pixels; the view maps them to
 * display pixels (display = image * scale + offset). Everything here is pure so it can be
 * unit-tested without a browser.
 */

export interface Point {
  x: number;
  y: number;
}

export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface View {
  scale: number;
  tx: number;
  ty: number;
}

export type Handle = "nw" | "n" | "ne" | "e" | "se" | "s" | "sw" | "w";
export const HANDLES: Handle[] = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];

/** Smallest box side, in image pixels, that a drag may produce. */
export const MIN_BOX_SIDE = 2;

export function toDisplay(view: View, p: Point): Point {
  return { x: p.x * view.scale + view.tx, y: p.y * view.scale + view.ty };
}

export function toImage(view: View, p: Point): Point {
  return { x: (p.x - view.tx) / view.scale, y: (p.y - view.ty) / view.scale };
}

/** The view that shows the whole image centred in the stage. */
export function fitView(imageW: number, imageH: number, stageW: number, stageH: number, padding = 16): View {
  const availW = Math.max(1, stageW - 2 * padding);
  const availH = Math.max(1, stageH - 2 * padding);
  const scale = Math.min(availW / imageW, availH / imageH);
  return { scale, tx: (stageW - imageW * scale) / 2, ty: (stageH - imageH * scale) / 2 };
}

/** Zoom by `factor` keeping the image point under `anchor` (display pixels) in place. */
export function zoomAt(view: View, factor: number, anchor: Point, minScale: number, maxScale: number): View {
  const scale = clamp(view.scale * factor, minScale, maxScale);
  const under = toImage(view, anchor);
  return { scale, tx: anchor.x - under.x * scale, ty: anchor.y - under.y * scale };
}

export function panBy(view: View, dx: number, dy: number): View {
  return { scale: view.scale, tx: view.tx + dx, ty: view.ty + dy };
}

export function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

export function clampPoint(p: Point, width: number, height: number): Point {
  return { x: clamp(p.x, 0, width), y: clamp(p.y, 0, height) };
}

/** The box spanned by two drag corners, ordered and clipped to the image. */
export function boxFromCorners(a: Point, b: Point, width: number, height: number): Box {
  const p = clampPoint(a, width, height);
  const q = clampPoint(b, width, height);
  return {
    x1: Math.min(p.x, q.x),
    y1: Math.min(p.y, q.y),
    x2: Math.max(p.x, q.x),
    y2: Math.max(p.y, q.y),
  };
}

export function hasArea(box: Box, minSide = MIN_BOX_SIDE): boolean {
  return box.x2 - box.x1 >= minSide && box.y2 - box.y1 >= minSide;
}

/** Clip a box to the image (a pre-label may overhang by a rounding error). */
export function clampBox(box: Box, width: number, height: number): Box {
  return {
    x1: clamp(Math.min(box.x1, box.x2), 0, width),
    y1: clamp(Math.min(box.y1, box.y2), 0, height),
    x2: clamp(Math.max(box.x1, box.x2), 0, width),
    y2: clamp(Math.max(box.y1, box.y2), 0, height),
  };
}

/** Translate a box; the move stops at the image border so the box keeps its size. */
export function moveBox(box: Box, dx: number, dy: number, width: number, height: number): Box {
  const w = box.x2 - box.x1;
  const h = box.y2 - box.y1;
  const x1 = clamp(box.x1 + dx, 0, Math.max(0, width - w));
  const y1 = clamp(box.y1 + dy, 0, Math.max(0, height - h));
  return { x1, y1, x2: x1 + w, y2: y1 + h };
}

/**
 * Drag one handle to `p` (image pixels). The edges the handle owns follow the pointer,
 * clipped to the image, and never come closer than `minSide` to the opposite edge, so a
 * resize cannot turn a box inside out or leave it without area.
 */
export function resizeBox(
  box: Box,
  handle: Handle,
  p: Point,
  width: number,
  height: number,
  minSide = MIN_BOX_SIDE,
): Box {
  const q = clampPoint(p, width, height);
  const next = { ...box };
  if (handle.includes("w")) next.x1 = Math.min(q.x, box.x2 - minSide);
  if (handle.includes("e")) next.x2 = Math.max(q.x, box.x1 + minSide);
  if (handle.startsWith("n")) next.y1 = Math.min(q.y, box.y2 - minSide);
  if (handle.startsWith("s")) next.y2 = Math.max(q.y, box.y1 + minSide);
  return clampBox(next, width, height);
}

/** Where each handle sits, in image pixels. */
export function handlePoint(box: Box, handle: Handle): Point {
  const cx = (box.x1 + box.x2) / 2;
  const cy = (box.y1 + box.y2) / 2;
  const x = handle.includes("w") ? box.x1 : handle.includes("e") ? box.x2 : cx;
  const y = handle.startsWith("n") ? box.y1 : handle.startsWith("s") ? box.y2 : cy;
  return { x, y };
}

/** The handle within `radius` display pixels of the display point `p`, if any. */
export function handleAt(box: Box, view: View, p: Point, radius: number): Handle | null {
  let best: Handle | null = null;
  let bestDistance = radius;
  for (const handle of HANDLES) {
    const d = toDisplay(view, handlePoint(box, handle));
    const distance = Math.hypot(d.x - p.x, d.y - p.y);
    if (distance <= bestDistance) {
      best = handle;
      bestDistance = distance;
    }
  }
  return best;
}

export function contains(box: Box, p: Point): boolean {
  return p.x >= box.x1 && p.x <= box.x2 && p.y >= box.y1 && p.y <= box.y2;
}

/** Index of the smallest box under `p` (so a box inside another stays reachable), or -1. */
export function boxIndexAt(boxes: readonly Box[], p: Point): number {
  let best = -1;
  let bestArea = Infinity;
  boxes.forEach((box, index) => {
    const area = (box.x2 - box.x1) * (box.y2 - box.y1);
    if (contains(box, p) && area < bestArea) {
      best = index;
      bestArea = area;
    }
  });
  return best;
}

/** Round to 1/100 px so stored payloads carry no float noise from the view transform. */
export function roundBox<T extends Box>(box: T): T {
  const r = (v: number) => Math.round(v * 100) / 100;
  return { ...box, x1: r(box.x1), y1: r(box.y1), x2: r(box.x2), y2: r(box.y2) };
}

/**
 * Which image to show: the display-sized version until the view magnifies it beyond its
 * own resolution, then the original.
 */
export function needsFullResolution(view: View, imageW: number, displayW: number): boolean {
  return displayW < imageW && view.scale * imageW > displayW * 1.05;
}
