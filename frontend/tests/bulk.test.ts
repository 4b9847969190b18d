import { describe, expect, it } from "vitest";
import { type BulkAnswer, bulkLabelBody, bulkSummary, labeledIds } from "../src/grid/bulk";

const classes = [{ id: 3, name: "Oak" }, { id: 4, name: "elm" }];

describe("bulkLabelBody", () => {
  it("names an existing class by id, whatever the case and spaces", () => {
    expect(bulkLabelBody("  oak ", classes, [1, 2], "k1")).toEqual(
      { idempotency_key: "k1", label_class: 3, new_class_name: "", image_ids: [1, 2], time_spent_ms: 0 });
  });

  it("asks for a new class for a name not in the project", () => {
    expect(bulkLabelBody("birch", classes, [5], "k2")).toMatchObject({ label_class: null, new_class_name: "birch" });
  });

  it("refuses an unnamed cluster or an empty selection", () => {
    expect(() => bulkLabelBody(" ", classes, [1], "k")).toThrow(/Name the cluster/);
    expect(() => bulkLabelBody("oak", classes, [], "k")).toThrow(/No image/);
  });
});

describe("the answer", () => {
  const answer: BulkAnswer = {
    label_class: { id: 3, name: "Oak" }, created: 2, replayed: 1,
    results: [
      { image_id: 1, status: "created" }, { image_id: 2, status: "created" }, { image_id: 3, status: "replayed" },
      { image_id: 4, status: "already_labeled" }, { image_id: 5, status: "leased" }, { image_id: 6, status: "leased" },
    ],
  };

  it("counts created and replayed images as labeled", () => {
    expect([...labeledIds(answer)]).toEqual([1, 2, 3]);
  });

  it("says how many were labeled and why the rest were not", () => {
    expect(bulkSummary(answer)).toBe('3 labeled as "Oak" (1 already labeled, 2 held by someone now).');
  });
});
