import { describe, expect, it } from "vitest";
import { parseClassMap } from "../src/lib/classMap";

describe("parseClassMap", () => {
  it("reads one mapping a line and skips blank lines", () => {
    expect(parseClassMap("Tree = tree\n\n  Car=car  \nA = b = c")).toEqual({ Tree: "tree", Car: "car", A: "b = c" });
  });

  it("names the line that is not a mapping", () => {
    expect(() => parseClassMap("Tree = tree\nbus")).toThrow("Class mapping line 2");
    expect(() => parseClassMap(" = tree")).toThrow("line 1");
  });
});
