/** Review (leads): browse annotations with filters; accept or reject with a comment. */
import { boxesSvg, type PlainBox } from "../lib/svgBoxes";
import { byId, call, el, toast } from "../lib/api";

interface ReviewItem {
  id: number;
  image: { id: number; name: string; url: string; display_url: string; width: number; height: number };
  author: string | null;
  kind: string;
  state: string;
  payload: { boxes?: PlainBox[]; labels?: number[] };
  prediction: null | { model_version: number; payload: { boxes?: PlainBox[]; labels?: number[] } };
  flag_reason: string;
  time_spent_ms: number;
  created_at: string;
  review_status: string;
  reviewed_by: string | null;
  review_comment: string;
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
    if (!append) list.replaceChildren();
    list.append(...page.results.map(card));
    countNode.textContent = `${page.count} annotation${page.count === 1 ? "" : "s"} match`;
    nextUrl = page.next;
    more.hidden = !nextUrl;
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
  thumb.append(
    boxesSvg(item.image.width, item.image.height, [
      { boxes: item.prediction?.payload.boxes ?? [], dashed: true },
      { boxes: item.payload.boxes ?? [], dashed: false },
    ], (label) => classById.get(label)?.color ?? "#888"),
  );
  const body = el("div", { class: "body" },
    el("div", { class: "row" },
      el("strong", {}, item.author ?? "import"),
      el("span", { class: `badge${item.kind === "flag" ? " warn" : ""}` }, KIND_TEXT[item.kind] ?? item.kind),
      el("span", { class: "muted" }, `${(item.time_spent_ms / 1000).toFixed(1)} s`),
    ),
    el("div", { class: "muted" }, item.image.name),
  );
  if (item.payload.labels) body.append(el("div", {}, `Tags: ${names(item.payload.labels)}`));
  if (item.payload.boxes) {
    const predicted = item.prediction?.payload.boxes?.length;
    body.append(el("div", {}, `${item.payload.boxes.length} boxes` + (predicted !== undefined ? ` (model proposed ${predicted})` : "")));
  }
  if (item.flag_reason) body.append(el("div", {}, `Reason: ${item.flag_reason}`));
  if (item.state === "extra_opinion") body.append(el("span", { class: "badge" }, "extra opinion"));
  const decision = el("div", { class: "decision" });
  body.append(decision);
  renderDecision(item, decision);
  const node = el("article", { class: "review-card", "data-annotation-id": String(item.id) }, thumb, body);
  return node;
}

function renderDecision(item: ReviewItem, host: HTMLElement): void {
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
  host.replaceChildren(comment, el("div", { class: "row" }, accept, reject));
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
