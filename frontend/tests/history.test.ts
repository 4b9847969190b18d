import { describe, expect, it } from "vitest";
import { History } from "../src/editor/history";

describe("History", () => {
  it("undoes and redoes in order", () => {
    const h = new History<number[]>([]);
    h.push([1]);
    h.push([1, 2]);
    expect(h.undo()).toEqual([1]);
    expect(h.undo()).toEqual([]);
    expect(h.undo()).toBeNull();
    expect(h.redo()).toEqual([1]);
    expect(h.current).toEqual([1]);
  });

  it("drops the redo branch on a new edit", () => {
    const h = new History("a");
    h.push("b");
    h.undo();
    h.push("c");
    expect(h.redo()).toBeNull();
    expect(h.undo()).toBe("a");
  });

  it("does not record drag frames made with replace", () => {
    const h = new History(0);
    h.push(1);
    h.replace(2);
    h.replace(3);
    expect(h.undo()).toBe(0);
  });
});

import { Stopwatch } from "../src/editor/stopwatch";

describe("Stopwatch", () => {
  it("counts only the time the page was visible", () => {
    let t = 0;
    const watch = new Stopwatch(() => t);
    watch.start();
    t = 1000;
    watch.pause();
    t = 60_000;
    watch.resume();
    t = 60_500;
    expect(watch.elapsedMs()).toBe(1500);
  });
});
