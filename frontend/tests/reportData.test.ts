import { describe, expect, it } from "vitest";

import { armSeries, csvUrl, editsPerImage, formatCell, points } from "../src/reports/data";

describe("report data helpers", () => {
  it("links each table's CSV download to the report API", () => {
    expect(csvUrl("7", "prelabel-quality", "by_version")).toBe(
      "/api/projects/7/reports/prelabel-quality/?format=csv&table=by_version",
    );
  });

  it("lines up each queue arm's acceptance with the version axis, null where missing", () => {
    const rows = [
      { version: 1, arm: "strategy", acceptance_rate: 0.4 },
      { version: 2, arm: "strategy", acceptance_rate: 0.5 },
      { version: 2, arm: "random", acceptance_rate: 0.7 },
    ];
    expect(armSeries(rows, "strategy", ["1", "2"])).toEqual([0.4, 0.5]);
    expect(armSeries(rows, "random", ["1", "2"])).toEqual([null, 0.7]);
  });

  it("divides edits by the pre-labeled images", () => {
    const row = { prelabeled: 4, boxes_added: 2, boxes_deleted: 1, boxes_moved: 0, class_flips: 4 };
    expect(editsPerImage(row)).toEqual({ added: 0.5, deleted: 0.25, moved: 0, "class flips": 1 });
    expect(editsPerImage({ prelabeled: 0 }).added).toBe(0);
  });

  it("keeps only rows with both coordinates and formats cells for reading", () => {
    expect(points([{ n: 1, m: 0.5 }, { n: 2, m: null }], "n", "m")).toEqual([{ x: 1, y: 0.5 }]);
    expect(formatCell(1234)).toBe("1,234");
    expect(formatCell(0.123456)).toBe("0.123");
    expect(formatCell(null)).toBe("");
  });
});
