/** Review (leads): browse annotations with filters; accept or reject with a comment, one
 * by one or many at once (select, then one request); fix a label in place (the lead's own
 * label replaces it); open the image in the editor. */
import { boxesSvg, type PlainBox, type PlainPolygon } from "../lib/svgBoxes";
import { byId, call, el, toast } from "../lib/api";
import "../styles/lead.css";

interface ReviewItem {
  id: number;
  image: { id: number; name: string; url: string; display_url: string; width: number; height: number };
  author: string | null;
  kind: string;
  state: string;
  payload: { boxes?: PlainBox[]; polygons?: PlainPolygon[]; labels?: number[] };
  prediction: null | { model_version: number; payload: { boxes?: PlainBox[]; polygons?: PlainPolygon[]; labels?: number[] } };
  flag_reason: string;
  time_spent_ms: number;
  created_at: string;
  review_status: string;
  reviewed_by: string | null;
  review_comment: string;
}

interface BulkResult {
  id: number;
  ok: boolean;
  review_status: string | null;
  detail: string;
}

interface Page {
  count: number;
  next: string | null;
  results: ReviewItem[];
}

const list = byId("review-list");
const projectId = list.dataset.projectId;
const form = byId<HTMLFormElement>("review-filters");
const more = byId<HTMLButtonElement>("review-more");
const countNode = byId("review-count");
const classes: Array<{ id: number; name: string; color: string }> = JSON.parse(byId("label-classes").textContent || "[]");
const classById = new Map(classes.map((c) => [c.id, c]));
let nextUrl: string | null = null;
const selectAll = byId<HTMLInputElement>("select-all");
const selectedCount = byId("selected-count");
const bulkAccept = byId<HTMLButtonElement>("bulk-accept");
const bulkReject = byId<HTMLButtonElement>("bulk-reject");
/** Pending annotations on screen, by id: what a bulk decision can reach. */
const shown = new Map<number, { item: ReviewItem; pick: HTMLInputElement; host: HTMLElement; card: HTMLElement }>();

const KIND_TEXT: Record<string, string> = {
  accept: "accepted pre-labels", correct: "corrected", flag: "flagged unclear", skip: "skipped",
};

function filterQuery(): string {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form).entries()) if (value !== "") params.set(key, String(value));
  params.set("limit", "24");
  return params.toString();
}

async function load(url: string, append: boolean): Promise<void> {
  try {
    const page = await call<Page>("GET", url);
    if (!append) {
      list.replaceChildren();
      shown.clear();
    }
    list.append(...page.results.map(card));
    countNode.textContent = `${page.count} annotation${page.count === 1 ? "" : "s"} match`;
    nextUrl = page.next;
    more.hidden = !nextUrl;
    renderSelection();
  } catch (error) {
    toast(`Could not load annotations: ${(error as Error).message}`, "error");
  }
}

function names(labels: number[] | undefined): string {
  return (labels ?? []).map((id) => classById.get(id)?.name ?? `class ${id}`).join(", ") || "none";
}

function card(item: ReviewItem): HTMLElement {
  const image = el("img", { src: item.image.display_url || item.image.url, alt: item.image.name, loading: "lazy" });
  const thumb = el("div", { class: "thumb" }, image);
  const pick = el("input", { type: "checkbox", class: "pick", "aria-label": `Select annotation ${item.id}` });
  thumb.append(
    boxesSvg(item.image.width, item.image.height, [
      { boxes: item.prediction?.payload.boxes ?? [], polygons: item.prediction?.payload.polygons, dashed: true },
      { boxes: item.payload.boxes ?? [], polygons: item.payload.polygons, dashed: false },
    ], (label) => classById.get(label)?.color ?? "#888"),
  );
  const body = el("div", { class: "body" },
    el("div", { class: "row" },
      el("strong", {}, item.author ?? "import"),
      el("span", { class: `badge${item.kind === "flag" ? " warn" : ""}` }, KIND_TEXT[item.kind] ?? item.kind),
      el("span", { class: "muted" }, `${(item.time_spent_ms / 1000).toFixed(1)} s`),
    ),
    el("div", { class: "row" },
      el("span", { class: "muted" }, item.image.name),
      el("a", { href: `/projects/${projectId}/images/${item.image.id}/`, class: "open-editor" }, "Open in editor"),
    ),
  );
  if (item.payload.labels) body.append(el("div", {}, `Tags: ${names(item.payload.labels)}`));
  const objects = item.payload.boxes ?? item.payload.polygons;
  if (objects) {
    const predicted = (item.prediction?.payload.boxes ?? item.prediction?.payload.polygons)?.length;
    const noun = item.payload.boxes ? "boxes" : "shapes";
    body.append(el("div", {}, `${objects.length} ${noun}` + (predicted !== undefined ? ` (model proposed ${predicted})` : "")));
  }
  if (item.flag_reason) body.append(el("div", {}, `Reason: ${item.flag_reason}`));
  if (item.state === "extra_opinion") body.append(el("span", { class: "badge" }, "extra opinion"));
  const decision = el("div", { class: "decision" });
  body.append(decision);
  const node = el("article", { class: "review-card", "data-annotation-id": String(item.id) }, thumb, body);
  thumb.prepend(pick);
  pick.addEventListener("change", () => {
    node.classList.toggle("selected", pick.checked);
    renderSelection();
  });
  shown.set(item.id, { item, pick, host: decision, card: node });
  renderDecision(item, decision);
  return node;
}

function selected(): number[] {
  return [...shown.entries()].filter(([, entry]) => entry.pick.checked && !entry.pick.disabled).map(([id]) => id);
}

function renderSelection(): void {
  const ids = selected();
  const pickable = [...shown.values()].filter((entry) => !entry.pick.disabled);
  selectedCount.textContent = `${ids.length} selected`;
  bulkAccept.disabled = bulkReject.disabled = ids.length === 0;
  selectAll.checked = pickable.length > 0 && ids.length === pickable.length;
}

selectAll.addEventListener("change", () => {
  for (const entry of shown.values()) {
    if (entry.pick.disabled) continue;
    entry.pick.checked = selectAll.checked;
    entry.card.classList.toggle("selected", selectAll.checked);
  }
  renderSelection();
});

async function decideSelected(decision: "accept" | "reject"): Promise<void> {
  const ids = selected();
  if (ids.length === 0) return;
  bulkAccept.disabled = bulkReject.disabled = true;
  try {
    const answer = await call<{ results: BulkResult[]; reviewed: number }>(
      "POST", `/api/projects/${projectId}/annotations/review/`, { ids, decision });
    const failed = answer.results.filter((result) => !result.ok);
    for (const result of answer.results) {
      const entry = shown.get(result.id);
      if (!entry || !result.review_status) continue;
      entry.item = { ...entry.item, review_status: result.review_status, reviewed_by: result.ok ? "you" : entry.item.reviewed_by };
      renderDecision(entry.item, entry.host);
    }
    const verb = decision === "accept" ? "Accepted" : "Rejected";
    toast(`${verb} ${answer.reviewed} annotation${answer.reviewed === 1 ? "" : "s"}` +
      (failed.length ? `; ${failed.length} not changed (${failed[0].detail})` : "."), failed.length ? "error" : "info");
  } catch (error) {
    toast(`Bulk review failed: ${(error as Error).message}`, "error");
  }
  renderSelection();
}

bulkAccept.addEventListener("click", () => void decideSelected("accept"));
bulkReject.addEventListener("click", () => void decideSelected("reject"));

function renderDecision(item: ReviewItem, host: HTMLElement): void {
  const entry = shown.get(item.id);
  if (entry) {
    entry.pick.disabled = item.review_status !== "pending";
    if (entry.pick.disabled) {
      entry.pick.checked = false;
      entry.card.classList.remove("selected");
    }
    entry.card.dataset.reviewStatus = item.review_status;
  }
  if (item.review_status !== "pending") {
    const tone = item.review_status === "accepted" ? "ok" : "bad";
    host.replaceChildren(
      el("span", { class: `badge ${tone}` }, `${item.review_status} by ${item.reviewed_by ?? "?"}`),
      ...(item.review_comment ? [el("div", { class: "muted" }, item.review_comment)] : []),
    );
    return;
  }
  const comment = el("textarea", { placeholder: "Comment (optional)", "aria-label": "Review comment" });
  const flag = item.kind === "flag";
  const accept = el("button", { type: "button", class: "primary" }, flag ? "Confirm unclear" : "Accept");
  const reject = el("button", { type: "button", class: "danger" }, flag ? "Back to the queue" : "Reject");
  const decide = async (decision: "accept" | "reject") => {
    accept.disabled = reject.disabled = true;
    try {
      const updated = await call<ReviewItem>("POST", `/api/annotations/${item.id}/review/`, { decision, comment: comment.value });
      renderDecision(updated, host);
    } catch (error) {
      toast((error as Error).message, "error");
      accept.disabled = reject.disabled = false;
    }
  };
  accept.addEventListener("click", () => void decide("accept"));
  reject.addEventListener("click", () => void decide("reject"));
  const buttons = el("div", { class: "row" }, accept, reject);
  if (item.kind === "accept" || item.kind === "correct") {
    const fix = el("button", { type: "button", class: "fix-label" }, "Fix label");
    fix.addEventListener("click", () => {
      fix.disabled = true;
      host.append(fixForm(item, host, comment));
    });
    buttons.append(fix);
  }
  host.replaceChildren(comment, buttons);
  renderSelection();
}

/** The label as the lead would have it: a class per box (or none: the box goes), or the
 * image's classes; saving stores the lead's label and rejects this one. */
function fixForm(item: ReviewItem, host: HTMLElement, comment: HTMLTextAreaElement): HTMLElement {
  const { boxes, polygons } = item.payload;
  const noun = polygons ? "shape" : "box";
  const options = (chosen: number | null, allowNone: boolean) => [
    ...(allowNone ? [el("option", { value: "" }, `remove ${noun}`)] : []),
    ...classes.map((c) => {
      const option = el("option", { value: String(c.id) }, c.name);
      if (c.id === chosen) option.selected = true;
      return option;
    }),
  ];
  const form = el("form", { class: "fix-form" });
  const objects: { label: number }[] | undefined = boxes ?? polygons;
  const selects: HTMLSelectElement[] = [];
  if (objects) {
    const title = noun === "box" ? "Box" : "Shape";
    objects.forEach((object, index) => {
      const select = el("select", { "aria-label": `Class of ${noun} ${index + 1}` }, ...options(object.label, true));
      selects.push(select);
      form.append(el("div", { class: "box-fix" }, `${title} ${index + 1}`, select));
    });
    if (objects.length === 0) form.append(el("div", { class: "muted" }, `No ${noun === "box" ? "boxes" : "shapes"}: open the image in the editor to draw them.`));
  } else {
    const select = el("select", { "aria-label": "Class" }, ...options(item.payload.labels?.[0] ?? null, false));
    selects.push(select);
    form.append(el("label", {}, "Class", select));
  }
  const save = el("button", { type: "submit", class: "primary" }, "Save fix");
  const cancel = el("button", { type: "button" }, "Cancel");
  form.append(el("div", { class: "row" }, save, cancel));
  cancel.addEventListener("click", () => renderDecision(item, host));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let payload: Record<string, unknown>;
    if (boxes) {
      payload = { boxes: boxes.flatMap((box, index) => selects[index].value === "" ? [] :
        [{ x1: box.x1, y1: box.y1, x2: box.x2, y2: box.y2, label: Number(selects[index].value) }]) };
    } else if (polygons) {
      payload = { polygons: polygons.flatMap((polygon, index) => selects[index].value === "" ? [] :
        [{ ...polygon, label: Number(selects[index].value) }]) };
    } else {
      payload = { labels: [Number(selects[0].value)] };
    }
    const kept = payload.boxes ?? payload.polygons;
    const empty = Array.isArray(kept) && kept.length === 0;
    save.disabled = true;
    try {
      const fixed = await call<ReviewItem>("POST", `/api/annotations/${item.id}/fix/`, { payload, empty, comment: comment.value });
      const summary = fixed.payload.labels ? names(fixed.payload.labels)
        : fixed.payload.polygons ? `${fixed.payload.polygons.length} shapes` : `${fixed.payload.boxes?.length ?? 0} boxes`;
      renderDecision({ ...item, review_status: "rejected", reviewed_by: "you", review_comment: `Fixed: now ${summary}` }, host);
      toast(`Label fixed: ${summary}.`);
    } catch (error) {
      toast((error as Error).message, "error");
      save.disabled = false;
    }
  });
  return form;
}

function loadFirstPage(): void {
  void load(`/api/projects/${projectId}/annotations/?${filterQuery()}`, false);
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  loadFirstPage();
});
more.addEventListener("click", () => nextUrl && void load(nextUrl, true));
loadFirstPage();
