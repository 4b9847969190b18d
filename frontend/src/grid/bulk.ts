/** The bulk-label request a named cluster sends, and what its answer says, without the DOM. */

export interface ClassRef {
  id: number;
  name: string;
}

export interface BulkResult {
  image_id: number;
  status: "created" | "replayed" | "already_labeled" | "leased" | "not_found" | string;
  annotation_id?: number | null;
  detail?: string;
}

export interface BulkAnswer {
  label_class: ClassRef;
  created: number;
  replayed: number;
  results: BulkResult[];
}

/** The body of `POST .../bulk-labels/`: an existing class by its exact name (case and
 * spaces aside), else a new class of that name. Throws on an empty name or no images. */
export function bulkLabelBody(name: string, classes: ClassRef[], imageIds: number[], key: string, timeSpentMs = 0): Record<string, unknown> {
  const clean = name.trim();
  if (!clean) throw new Error("Name the cluster first: an existing class or a new one.");
  if (!imageIds.length) throw new Error("No image is selected in this cluster.");
  const existing = classes.find((c) => c.name.trim().toLowerCase() === clean.toLowerCase());
  return {
    idempotency_key: key,
    label_class: existing ? existing.id : null,
    new_class_name: existing ? "" : clean,
    image_ids: imageIds,
    time_spent_ms: timeSpentMs,
  };
}

/** Images the answer labeled (now or by an earlier try of the same request). */
export function labeledIds(answer: BulkAnswer): Set<number> {
  return new Set(answer.results.filter((r) => r.status === "created" || r.status === "replayed").map((r) => r.image_id));
}

const STATUS_WORDS: Record<string, string> = {
  already_labeled: "already labeled", leased: "held by someone now", not_found: "not found",
};

/** One sentence: how many got the class, and why the others did not. */
export function bulkSummary(answer: BulkAnswer): string {
  const done = labeledIds(answer).size;
  const others = new Map<string, number>();
  for (const r of answer.results) {
    if (r.status === "created" || r.status === "replayed") continue;
    others.set(r.status, (others.get(r.status) ?? 0) + 1);
  }
  const rest = [...others].map(([status, n]) => `${n} ${STATUS_WORDS[status] ?? status}`);
  return `${done} labeled as "${answer.label_class.name}"${rest.length ? ` (${rest.join(", ")})` : ""}.`;
}
