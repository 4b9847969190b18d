import { describe, expect, it } from "vitest";
import { GridSelection, gridAction, largestGroup } from "../src/grid/selection";

const items = [1, 2, 3, 4, 5].map((id) => ({ id }));

describe("GridSelection", () => {
  it("starts with everything selected and toggles the focused item", () => {
    const grid = new GridSelection(items, 3);
    expect(grid.selected().map((i) => i.id)).toEqual([1, 2, 3, 4, 5]);
    grid.apply("right");
    grid.apply("toggle");
    expect(grid.deselected().map((i) => i.id)).toEqual([2]);
    grid.apply("toggle");
    expect(grid.deselected()).toEqual([]);
  });

  it("moves by rows and columns and never leaves the grid", () => {
    const grid = new GridSelection(items, 3);
    grid.apply("left");
    expect(grid.focus).toBe(0);
    grid.apply("down");
    expect(grid.focus).toBe(3);
    grid.apply("down"); // no row below: stays
    expect(grid.focus).toBe(3);
    grid.apply("right");
    grid.apply("right"); // past the last item: stays
    expect(grid.focus).toBe(4);
    grid.apply("up");
    expect(grid.focus).toBe(1);
  });

  it("toggles all off when all are on, and all on otherwise", () => {
    const grid = new GridSelection(items, 3);
    grid.apply("all");
    expect(grid.selected()).toEqual([]);
    grid.toggle(3);
    grid.apply("all");
    expect(grid.selected().length).toBe(5);
  });

  it("reports submit to the page and changes nothing", () => {
    const grid = new GridSelection(items, 3);
    expect(grid.apply("submit")).toBe(true);
    expect(grid.selected().length).toBe(5);
  });
});

describe("gridAction", () => {
  it("maps the grid's keys and leaves modified keys alone", () => {
    expect(gridAction({ key: "ArrowDown" })).toBe("down");
    expect(gridAction({ key: " " })).toBe("toggle");
    expect(gridAction({ key: "A" })).toBe("all");
    expect(gridAction({ key: "Enter" })).toBe("submit");
    expect(gridAction({ key: "a", ctrlKey: true })).toBeNull();
    expect(gridAction({ key: "q" })).toBeNull();
  });
});

describe("largestGroup", () => {
  it("picks the class most items propose, skipping items without one", () => {
    const proposals = [{ c: 7 }, { c: null }, { c: 9 }, { c: 9 }, { c: 7 }, { c: 9 }];
    const group = largestGroup(proposals, (p) => p.c);
    expect(group?.classId).toBe(9);
    expect(group?.items.length).toBe(3);
    expect(largestGroup([{ c: null }], (p) => p.c)).toBeNull();
  });
});
