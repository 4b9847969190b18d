/**
 * Polygon geometry and edits for the segmentation editor, pure so they can be unit-tested
 * without a browser. Points live in original-image pixels, as in geometry.ts. An instance
 * holds one ring (an outline) or several (holes, split parts, as imported or predicted);
 * the vertex edits apply to single-ring instances, several rings are kept as they came.
 */
import { type Point, type View, clamp, clampPoint, toDisplay } from "./geometry";

export interface EditorPolygon {
  label: number;
  rings: Point[][];
  /** The model's confidence while the instance is still the model's, else null. */
  score: number | null;
  fromModel: boolean;
}

export interface PolygonLabels {
  polygons: EditorPolygon[];
}

/** A polygon needs this many vertices; a delete never goes below it. */
export const MIN_VERTICES = 3;

/** Twice the signed area (shoelace); positive for counter-clockwise in y-up axes. */
function signedArea2(points: readonly Point[]): number {
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    const a = points[i];
    const b = points[(i + 1) % points.length];
    sum += a.x * b.y - b.x * a.y;
  }
  return sum;
}

export function polygonArea(points: readonly Point[]): number {
  return Math.abs(signedArea2(points)) / 2;
}

/** Even-odd rule: inside an odd number of rings (so a hole's inside is outside). */
export function pointInRings(rings: readonly (readonly Point[])[], p: Point): boolean {
  let inside = false;
  for (const ring of rings) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const a = ring[i];
      const b = ring[j];
      if (a.y > p.y !== b.y > p.y && p.x < ((b.x - a.x) * (p.y - a.y)) / (b.y - a.y) + a.x) inside = !inside;
    }
  }
  return inside;
}

export function pointInPolygon(points: readonly Point[], p: Point): boolean {
  return pointInRings([points], p);
}

/** Index of the smallest instance under `p` (so one inside another stays reachable), or -1. */
export function polygonIndexAt(polygons: readonly EditorPolygon[], p: Point, include: (i: number) => boolean = () => true): number {
  let best = -1;
  let bestArea = Infinity;
  polygons.forEach((polygon, index) => {
    if (!include(index) || !pointInRings(polygon.rings, p)) return;
    const area = polygon.rings.reduce((sum, ring) => sum + polygonArea(ring), 0);
    if (area < bestArea) {
      best = index;
      bestArea = area;
    }
  });
  return best;
}

/** The vertex within `radius` display pixels of the display point `p`, or -1. */
export function vertexAt(points: readonly Point[], view: View, p: Point, radius: number): number {
  let best = -1;
  let bestDistance = radius;
  points.forEach((point, index) => {
    const d = toDisplay(view, point);
    const distance = Math.hypot(d.x - p.x, d.y - p.y);
    if (distance <= bestDistance) {
      best = index;
      bestDistance = distance;
    }
  });
  return best;
}

/** The closest point of segment ab to p, and how far along (0..1). */
function projectOnSegment(a: Point, b: Point, p: Point): { point: Point; t: number } {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const length2 = dx * dx + dy * dy;
  const t = length2 === 0 ? 0 : clamp(((p.x - a.x) * dx + (p.y - a.y) * dy) / length2, 0, 1);
  return { point: { x: a.x + t * dx, y: a.y + t * dy }, t };
}

/**
 * The edge of the closed ring within `tolerance` display pixels of the display point `p`:
 * `after` is the index of its first vertex (a new vertex goes in at after + 1) and `point`
 * the closest point on it, in image pixels. Null when no edge is that close.
 */
export function edgeAt(points: readonly Point[], view: View, p: Point, tolerance: number): { after: number; point: Point } | null {
  let best: { after: number; point: Point } | null = null;
  let bestDistance = tolerance;
  for (let i = 0; i < points.length; i++) {
    const a = toDisplay(view, points[i]);
    const b = toDisplay(view, points[(i + 1) % points.length]);
    const { point, t } = projectOnSegment(a, b, p);
    const distance = Math.hypot(point.x - p.x, point.y - p.y);
    if (distance <= bestDistance) {
      const start = points[i];
      const end = points[(i + 1) % points.length];
      best = { after: i, point: { x: start.x + t * (end.x - start.x), y: start.y + t * (end.y - start.y) } };
      bestDistance = distance;
    }
  }
  return best;
}

export function insertVertex(points: readonly Point[], after: number, point: Point): Point[] {
  return [...points.slice(0, after + 1), point, ...points.slice(after + 1)];
}

/** The ring without vertex `index`, or null when that would leave fewer than MIN_VERTICES. */
export function deleteVertex(points: readonly Point[], index: number): Point[] | null {
  if (points.length <= MIN_VERTICES || index < 0 || index >= points.length) return null;
  return points.filter((_, i) => i !== index);
}

export function moveVertex(points: readonly Point[], index: number, to: Point, width: number, height: number): Point[] {
  return points.map((point, i) => (i === index ? clampPoint(to, width, height) : point));
}

/** Translate every ring; the move stops at the image border so the shape keeps its form. */
export function moveRings(rings: readonly (readonly Point[])[], dx: number, dy: number, width: number, height: number): Point[][] {
  const all = rings.flat();
  const minX = Math.min(...all.map((p) => p.x));
  const maxX = Math.max(...all.map((p) => p.x));
  const minY = Math.min(...all.map((p) => p.y));
  const maxY = Math.max(...all.map((p) => p.y));
  const sx = clamp(dx, -minX, width - maxX);
  const sy = clamp(dy, -minY, height - maxY);
  return rings.map((ring) => ring.map((p) => ({ x: p.x + sx, y: p.y + sy })));
}

/** An open shape may close once it has MIN_VERTICES points and encloses some area. */
export function canClose(points: readonly Point[]): boolean {
  return points.length >= MIN_VERTICES && polygonArea(points) > 0;
}

/** Close an open shape into a new instance of `label`; null when it cannot close. */
export function closeShape(labels: PolygonLabels, points: readonly Point[], label: number): PolygonLabels | null {
  if (!canClose(points)) return null;
  const polygon: EditorPolygon = { label, rings: [roundPoints(points)], score: null, fromModel: false };
  return { polygons: [...labels.polygons, polygon] };
}

/** Replace the single ring of instance `index` by `ring`: the instance becomes the annotator's. */
export function withRing(labels: PolygonLabels, index: number, ring: Point[]): PolygonLabels {
  return withPolygon(labels, index, { rings: [roundPoints(ring)] });
}

export function withPolygon(labels: PolygonLabels, index: number, change: Partial<EditorPolygon>): PolygonLabels {
  return {
    polygons: labels.polygons.map((polygon, i) =>
      i === index ? { ...polygon, ...change, score: null, fromModel: false } : polygon,
    ),
  };
}

export function withoutPolygon(labels: PolygonLabels, index: number): PolygonLabels {
  return { polygons: labels.polygons.filter((_, i) => i !== index) };
}

/** Only instances with a single ring get vertex edits; the rest are moved, relabelled or deleted whole. */
export function isEditable(polygon: EditorPolygon): boolean {
  return polygon.rings.length === 1;
}

/** Round to 1/100 px so stored payloads carry no float noise from the view transform. */
export function roundPoints(points: readonly Point[]): Point[] {
  const r = (v: number) => Math.round(v * 100) / 100;
  return points.map((p) => ({ x: r(p.x), y: r(p.y) }));
}

export type PayloadPolygon = { label: number; points: number[][] } | { label: number; rings: number[][][] };

/** An instance as the API carries it: [[x, y], ...] points, or rings for several. */
export function toPayload(polygon: EditorPolygon): PayloadPolygon {
  const rings = polygon.rings.map((ring) => ring.map((p) => [p.x, p.y]));
  return rings.length === 1 ? { label: polygon.label, points: rings[0] } : { label: polygon.label, rings };
}

/** A pre-label or stored instance for the editor, its points clipped to the image (a
 * prediction may overhang by a rounding error). Malformed rings are dropped. */
export function fromPayload(
  polygon: { label: number; points?: number[][]; rings?: number[][][]; score?: number },
  width: number,
  height: number,
  fromModel: boolean,
): EditorPolygon | null {
  const raw = polygon.rings ?? (polygon.points ? [polygon.points] : []);
  const rings = raw
    .map((ring) => ring.filter((p) => p.length >= 2).map(([x, y]) => clampPoint({ x, y }, width, height)))
    .filter((ring) => ring.length >= MIN_VERTICES);
  if (rings.length === 0) return null;
  return { label: polygon.label, rings, score: typeof polygon.score === "number" ? polygon.score : null, fromModel };
}
