import { describe, expect, it } from "vitest";
import { History } from "../src/editor/history";
import {
  type EditorPolygon,
  type PolygonLabels,
  canClose,
  closeShape,
  deleteVertex,
  edgeAt,
  fromPayload,
  insertVertex,
  moveRings,
  moveVertex,
  pointInPolygon,
  pointInRings,
  polygonArea,
  polygonIndexAt,
  toPayload,
  vertexAt,
  withPolygon,
  withRing,
} from "../src/editor/polygon";

const square = [{ x: 0, y: 0 }, { x: 10, y: 0 }, { x: 10, y: 10 }, { x: 0, y: 10 }];
const identity = { scale: 1, tx: 0, ty: 0 };

function instance(rings: { x: number; y: number }[][], label = 1, fromModel = false): EditorPolygon {
  return { label, rings, score: fromModel ? 0.8 : null, fromModel };
}

describe("point in polygon", () => {
  it("tells inside from outside, for a concave shape too", () => {
    // An L: the notch at the top right is outside.
    const l = [{ x: 0, y: 0 }, { x: 4, y: 0 }, { x: 4, y: 6 }, { x: 10, y: 6 }, { x: 10, y: 10 }, { x: 0, y: 10 }];
    expect(pointInPolygon(l, { x: 2, y: 2 })).toBe(true);
    expect(pointInPolygon(l, { x: 8, y: 8 })).toBe(true);
    expect(pointInPolygon(l, { x: 8, y: 2 })).toBe(false);
    expect(pointInPolygon(l, { x: -1, y: 5 })).toBe(false);
  });

  it("treats a hole's inside as outside (even-odd over the rings)", () => {
    const hole = [{ x: 3, y: 3 }, { x: 7, y: 3 }, { x: 7, y: 7 }, { x: 3, y: 7 }];
    expect(pointInRings([square, hole], { x: 5, y: 5 })).toBe(false);
    expect(pointInRings([square, hole], { x: 1, y: 5 })).toBe(true);
  });

  it("picks the smallest instance under the point, among those allowed", () => {
    const small = [{ x: 2, y: 2 }, { x: 5, y: 2 }, { x: 5, y: 5 }];
    const polygons = [instance([square]), instance([small])];
    expect(polygonIndexAt(polygons, { x: 4, y: 3 })).toBe(1);
    expect(polygonIndexAt(polygons, { x: 4, y: 3 }, (i) => i !== 1)).toBe(0);
    expect(polygonIndexAt(polygons, { x: 20, y: 20 })).toBe(-1);
  });
});

describe("vertices and edges", () => {
  it("finds a vertex within the radius in display pixels", () => {
    const zoomed = { scale: 2, tx: 10, ty: 0 };
    // Vertex (10, 10) is at display (30, 20).
    expect(vertexAt(square, zoomed, { x: 33, y: 21 }, 8)).toBe(2);
    expect(vertexAt(square, zoomed, { x: 45, y: 21 }, 8)).toBe(-1);
  });

  it("finds the edge near a point and where on it, in image pixels", () => {
    const zoomed = { scale: 2, tx: 0, ty: 0 };
    const hit = edgeAt(square, zoomed, { x: 21, y: 8 }, 6); // near the right edge, y = 4 in image pixels
    expect(hit).toEqual({ after: 1, point: { x: 10, y: 4 } });
    // The closing edge, from the last vertex back to the first.
    expect(edgeAt(square, identity, { x: 0.5, y: 5 }, 2)?.after).toBe(3);
    expect(edgeAt(square, identity, { x: 5, y: 5 }, 2)).toBeNull();
  });

  it("inserts a vertex after the edge's first vertex", () => {
    const grown = insertVertex(square, 1, { x: 10, y: 4 });
    expect(grown).toEqual([{ x: 0, y: 0 }, { x: 10, y: 0 }, { x: 10, y: 4 }, { x: 10, y: 10 }, { x: 0, y: 10 }]);
    expect(insertVertex(square, 3, { x: 0, y: 5 })).toHaveLength(5);
    expect(insertVertex(square, 3, { x: 0, y: 5 })[4]).toEqual({ x: 0, y: 5 });
  });

  it("deletes a vertex but never below three", () => {
    const three = deleteVertex(square, 0);
    expect(three).toEqual([{ x: 10, y: 0 }, { x: 10, y: 10 }, { x: 0, y: 10 }]);
    expect(deleteVertex(three!, 1)).toBeNull();
    expect(deleteVertex(square, 7)).toBeNull();
  });

  it("keeps a dragged vertex inside the image", () => {
    expect(moveVertex(square, 2, { x: 30, y: -4 }, 20, 20)[2]).toEqual({ x: 20, y: 0 });
  });

  it("moves a whole shape, stopping at the border with its form kept", () => {
    const moved = moveRings([square], 15, 3, 20, 20)[0];
    expect(moved[0]).toEqual({ x: 10, y: 3 });
    expect(moved[2]).toEqual({ x: 20, y: 13 });
    expect(polygonArea(moved)).toBe(100);
  });
});

describe("closing a shape", () => {
  it("needs three points around some area", () => {
    expect(canClose(square.slice(0, 2))).toBe(false);
    expect(canClose([{ x: 0, y: 0 }, { x: 5, y: 5 }, { x: 10, y: 10 }])).toBe(false); // collinear
    expect(canClose(square.slice(0, 3))).toBe(true);
  });

  it("adds the instance of the drawing class, rounded to 1/100 px", () => {
    const empty: PolygonLabels = { polygons: [] };
    expect(closeShape(empty, square.slice(0, 2), 3)).toBeNull();
    const closed = closeShape(empty, [{ x: 0.123, y: 0 }, { x: 10, y: 0.004 }, { x: 5, y: 8.999 }], 3)!;
    expect(closed.polygons).toEqual([
      { label: 3, rings: [[{ x: 0.12, y: 0 }, { x: 10, y: 0 }, { x: 5, y: 9 }]], score: null, fromModel: false },
    ]);
  });
});

describe("edits with undo", () => {
  it("walks back through close, vertex insert and relabel, and forward again", () => {
    const history = new History<PolygonLabels>({ polygons: [] });
    const closed = closeShape(history.current, square, 1)!;
    history.push(closed);
    history.push(withRing(history.current, 0, insertVertex(square, 0, { x: 5, y: 0 })));
    history.push(withPolygon(history.current, 0, { label: 2 }));
    expect(history.current.polygons[0]).toMatchObject({ label: 2 });
    expect(history.current.polygons[0].rings[0]).toHaveLength(5);
    history.undo();
    expect(history.current.polygons[0].label).toBe(1);
    history.undo();
    expect(history.current.polygons[0].rings[0]).toEqual(square);
    history.undo();
    expect(history.current.polygons).toEqual([]);
    history.redo();
    expect(history.current).toEqual(closed);
  });

  it("an edit makes a pre-label the annotator's", () => {
    const labels = { polygons: [instance([square], 1, true)] };
    const edited = withRing(labels, 0, moveVertex(square, 0, { x: 1, y: 1 }, 20, 20));
    expect(edited.polygons[0]).toMatchObject({ fromModel: false, score: null });
    expect(labels.polygons[0].fromModel).toBe(true); // snapshots are never mutated
  });
});

describe("payloads", () => {
  it("round-trips a single ring as points and several rings as rings, untouched", () => {
    const payload = { label: 4, points: [[1.5, 2], [30, 2], [30, 40]], score: 0.7 };
    const polygon = fromPayload(payload, 100, 100, true)!;
    expect(polygon).toMatchObject({ label: 4, score: 0.7, fromModel: true });
    expect(toPayload(polygon)).toEqual({ label: 4, points: [[1.5, 2], [30, 2], [30, 40]] });
    const rings = [[[0, 0], [50, 0], [50, 50], [0, 50]], [[10, 10], [20, 10], [20, 20]]];
    expect(toPayload(fromPayload({ label: 1, rings }, 100, 100, false)!)).toEqual({ label: 1, rings });
  });

  it("clips a pre-label to the image and drops rings with fewer than three points", () => {
    const polygon = fromPayload({ label: 1, rings: [[[-2, 5], [120, 5], [50, 60]], [[1, 1], [2, 2]]] }, 100, 50, true)!;
    expect(polygon.rings).toEqual([[{ x: 0, y: 5 }, { x: 100, y: 5 }, { x: 50, y: 50 }]]);
    expect(fromPayload({ label: 1, points: [[1, 1]] }, 100, 50, true)).toBeNull();
  });
});
