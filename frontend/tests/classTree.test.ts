import { describe, expect, it } from "vitest";
import { ClassTree, suggestionRows, type TreeNode } from "../src/taxonomy/tree";

function node(id: number, name: string, parent: number | null, children: number[], labels = 0, subtree = labels): TreeNode {
  return { id, name, color: "#000000", hotkey: "", parent, order: id, depth: 0, path: [], children, labels, subtree_labels: subtree };
}

// tree(1) > oak(2) > red oak(3); tree > elm(4); flower(5)
const tree = new ClassTree([
  node(1, "tree", null, [2, 4], 1, 7),
  node(2, "oak", 1, [3], 3, 5),
  node(3, "red oak", 2, [], 2),
  node(4, "elm", 1, [], 1),
  node(5, "flower", null, []),
]);

describe("ClassTree", () => {
  it("never offers a move under the class itself or below it", () => {
    expect(tree.moveTargets(2).map((n) => n.name)).toEqual(["elm", "flower"]);
    expect(tree.canMove(1, 3)).toBe(false);
    expect(tree.canMove(3, null)).toBe(true);
    expect(tree.canMove(5, null)).toBe(false); // at the top already
  });

  it("offers merges into any class but its own subtree", () => {
    expect(tree.mergeTargets(2).map((n) => n.name)).toEqual(["tree", "elm", "flower"]);
    expect(tree.mergeTargets(1).map((n) => n.name)).toEqual(["flower"]);
  });

  it("moves a level up to the grandparent and down under the sibling above", () => {
    expect(tree.outdentTarget(3)).toBe(1);
    expect(tree.outdentTarget(2)).toBeNull();
    expect(tree.outdentTarget(1)).toBeUndefined();
    expect(tree.indentTarget(4)).toBe(2);
    expect(tree.indentTarget(2)).toBeUndefined();
    expect(tree.indentTarget(5)).toBe(1);
  });

  it("asks before a merge with the number of labels that will move", () => {
    expect(tree.mergeQuestion(2, 4)).toBe(
      'Merge "oak" into "elm"? 3 labels will move to "elm" and "oak" is deleted. Its 1 subclass moves under "elm".');
    expect(tree.mergeQuestion(4, 5)).toBe('Merge "elm" into "flower"? 1 label will move to "flower" and "elm" is deleted.');
  });

  it("counts a class's own labels and those below it", () => {
    expect(tree.countText(2)).toBe("3 labels (5 with subclasses)");
    expect(tree.countText(4)).toBe("1 label");
  });
});

describe("suggestionRows", () => {
  it("lists the suggestion top-down and lets only a new class under an existing parent be added", () => {
    const rows = suggestionRows([
      { name: "Tree", children: [{ name: "oak", children: [] }, { name: "birch", children: [{ name: "silver birch", children: [] }] }] },
      { name: "shrub", children: [] },
    ], ["tree", "oak"]);
    expect(rows.map((r) => [r.name, r.parent, r.depth, r.exists, r.addable])).toEqual([
      ["Tree", null, 0, true, false],
      ["oak", "Tree", 1, true, false],
      ["birch", "Tree", 1, false, true],
      ["silver birch", "birch", 2, false, false],
      ["shrub", null, 0, false, true],
    ]);
  });
});
