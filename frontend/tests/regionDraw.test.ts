import { describe, expect, it } from "vitest";
import { dragToBox } from "../src/lib/regionDraw";

describe("dragToBox", () => {
  it("turns a drag on a half-size display into image pixels, either corner first", () => {
    expect(dragToBox({ x: 60, y: 40 }, { x: 10, y: 5 }, 0.5, 512, 512)).toEqual({ x1: 20, y1: 10, x2: 120, y2: 80 });
  });

  it("clips to the image", () => {
    expect(dragToBox({ x: -30, y: 500 }, { x: 40, y: 700 }, 1, 512, 600)).toEqual({ x1: 0, y1: 500, x2: 40, y2: 600 });
  });

  it("ignores a click or a sliver", () => {
    expect(dragToBox({ x: 10, y: 10 }, { x: 11, y: 40 }, 1, 100, 100)).toBeNull();
  });
});
