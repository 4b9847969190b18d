import { describe, expect, it } from "vitest";
import {
  boxFromCorners,
  boxIndexAt,
  clampBox,
  fitView,
  handleAt,
  moveBox,
  needsFullResolution,
  resizeBox,
  roundBox,
  toDisplay,
  toImage,
  zoomAt,
} from "../src/editor/geometry";

describe("display <-> image coordinates", () => {
  it("round-trips a point through any view", () => {
    const view = { scale: 0.237, tx: 13.5, ty: -40 };
    const p = { x: 3999, y: 17.25 };
    const back = toImage(view, toDisplay(view, p));
    expect(back.x).toBeCloseTo(p.x, 9);
    expect(back.y).toBeCloseTo(p.y, 9);
  });

  it("fits a large image inside the stage, centred", () => {
    const view = fitView(4000, 3000, 1000, 800, 0);
    expect(view.scale).toBeCloseTo(0.25);
    expect(toDisplay(view, { x: 0, y: 0 })).toEqual({ x: 0, y: 25 });
    expect(toDisplay(view, { x: 4000, y: 3000 })).toEqual({ x: 1000, y: 775 });
  });

  it("zooms around the cursor: the image point under it stays put", () => {
    const view = { scale: 0.5, tx: 10, ty: 20 };
    const anchor = { x: 300, y: 200 };
    const before = toImage(view, anchor);
    const zoomed = zoomAt(view, 2, anchor, 0.1, 10);
    expect(zoomed.scale).toBe(1);
    const after = toImage(zoomed, anchor);
    expect(after.x).toBeCloseTo(before.x);
    expect(after.y).toBeCloseTo(before.y);
  });

  it("limits zoom to the allowed range", () => {
    expect(zoomAt({ scale: 1, tx: 0, ty: 0 }, 100, { x: 0, y: 0 }, 0.1, 8).scale).toBe(8);
    expect(zoomAt({ scale: 1, tx: 0, ty: 0 }, 0.001, { x: 0, y: 0 }, 0.1, 8).scale).toBe(0.1);
  });

  it("switches to the full-resolution image only once the view magnifies the display version", () => {
    const fit = fitView(6000, 4000, 1200, 800, 0); // scale 0.2 -> 1200 px shown
    expect(needsFullResolution(fit, 6000, 1600)).toBe(false);
    expect(needsFullResolution({ ...fit, scale: 0.5 }, 6000, 1600)).toBe(true);
    expect(needsFullResolution({ ...fit, scale: 4 }, 800, 800)).toBe(false); // no smaller version
  });
});

describe("drawing and clamping", () => {
  it("orders drag corners and clips them to the image", () => {
    expect(boxFromCorners({ x: 120, y: -5 }, { x: 30, y: 60 }, 100, 50)).toEqual({ x1: 30, y1: 0, x2: 100, y2: 50 });
  });

  it("clips an overhanging box", () => {
    expect(clampBox({ x1: -3, y1: 4, x2: 70, y2: 55 }, 64, 48)).toEqual({ x1: 0, y1: 4, x2: 64, y2: 48 });
  });

  it("moves a box but stops at the border, keeping its size", () => {
    const box = { x1: 10, y1: 10, x2: 30, y2: 20 };
    expect(moveBox(box, 5, 5, 64, 48)).toEqual({ x1: 15, y1: 15, x2: 35, y2: 25 });
    expect(moveBox(box, 100, -100, 64, 48)).toEqual({ x1: 44, y1: 0, x2: 64, y2: 10 });
  });

  it("rounds to hundredths of a pixel", () => {
    expect(roundBox({ x1: 1.23456, y1: 2.005, x2: 3.999, y2: 4, label: 7 })).toEqual({
      x1: 1.23, y1: 2.01, x2: 4, y2: 4, label: 7,
    });
  });
});

describe("resize", () => {
  const box = { x1: 10, y1: 10, x2: 50, y2: 40 };

  it("moves only the edges the handle owns", () => {
    expect(resizeBox(box, "se", { x: 60, y: 45 }, 100, 100)).toEqual({ x1: 10, y1: 10, x2: 60, y2: 45 });
    expect(resizeBox(box, "n", { x: 999, y: 2 }, 100, 100)).toEqual({ x1: 10, y1: 2, x2: 50, y2: 40 });
    expect(resizeBox(box, "w", { x: 0, y: 999 }, 100, 100)).toEqual({ x1: 0, y1: 10, x2: 50, y2: 40 });
  });

  it("clamps to the image", () => {
    expect(resizeBox(box, "ne", { x: 500, y: -50 }, 100, 100)).toEqual({ x1: 10, y1: 0, x2: 100, y2: 40 });
  });

  it("never inverts the box or leaves it without area", () => {
    const squashed = resizeBox(box, "e", { x: -20, y: 20 }, 100, 100, 2);
    expect(squashed).toEqual({ x1: 10, y1: 10, x2: 12, y2: 40 });
    const flattened = resizeBox(box, "s", { x: 20, y: 0 }, 100, 100, 2);
    expect(flattened.y2 - flattened.y1).toBe(2);
  });
});

describe("hit testing", () => {
  it("finds the handle near the pointer in display pixels", () => {
    const view = { scale: 2, tx: 0, ty: 0 };
    const box = { x1: 10, y1: 10, x2: 50, y2: 40 };
    expect(handleAt(box, view, { x: 101, y: 79 }, 6)).toBe("se");
    expect(handleAt(box, view, { x: 60, y: 20 }, 6)).toBe("n");
    expect(handleAt(box, view, { x: 60, y: 50 }, 6)).toBeNull();
  });

  it("prefers the smallest box under the pointer", () => {
    const boxes = [
      { x1: 0, y1: 0, x2: 100, y2: 100 },
      { x1: 40, y1: 40, x2: 60, y2: 60 },
    ];
    expect(boxIndexAt(boxes, { x: 50, y: 50 })).toBe(1);
    expect(boxIndexAt(boxes, { x: 10, y: 10 })).toBe(0);
    expect(boxIndexAt(boxes, { x: 101, y: 10 })).toBe(-1);
  });
});
