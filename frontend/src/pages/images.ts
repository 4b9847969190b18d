/** The image browser (leads): thumbnails of every image with its label, labeler, status and
 * the deployed model's uncertainty; filters; keyset pages ("Load more"); a click opens the
 * image in the editor. The filters live in the address, so Back returns to the same view. */
import { byId, call, el, toast } from "../lib/api";
import "../styles/lead.css";

interface Row {
  id: number;
  name: string;
  url: string;
  display_url: string;
  width: number;
  height: number;
  split: string;
  classes: string[];
  boxes: number | null;
  labeled_by: string | null;
  status: string;
  uncertainty: number | null;
}

interface Page {
  results: Row[];
  next_after: number | null;
  count: number | null;
}

const grid = byId("image-grid");
const projectId = grid.dataset.projectId;
const form = byId<HTMLFormElement>("browser-filters");
const more = byId<HTMLButtonElement>("browser-more");
const countNode = byId("browser-count");
let nextAfter: number | null = null;

const STATUS_TONE: Record<string, string> = { labeled: "ok", pending: "", rejected: "bad", flagged: "warn", unlabeled: "" };
const STATUS_TEXT: Record<string, string> = {
  labeled: "labeled", pending: "awaiting review", rejected: "rejected", flagged: "flagged", unlabeled: "unlabeled",
};

function filters(): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form).entries()) if (value !== "") params.set(key, String(value));
  return params;
}

function fillForm(params: URLSearchParams): void {
  for (const field of Array.from(form.elements) as HTMLInputElement[]) {
    if (!field.name) continue;
    const value = params.get(field.name);
    if (field.type === "checkbox") field.checked = value !== null;
    else if (value !== null) field.value = value;
  }
}

async function load(append: boolean): Promise<void> {
  const params = filters();
  params.set("limit", "60");
  if (append && nextAfter !== null) params.set("after", String(nextAfter));
  try {
    const page = await call<Page>("GET", `/api/projects/${projectId}/images/browse/?${params}`);
    if (!append) grid.replaceChildren();
    grid.append(...page.results.map(tile));
    if (page.count !== null) countNode.textContent = `${page.count} image${page.count === 1 ? "" : "s"} match`;
    if (!append && page.results.length === 0) grid.append(el("p", { class: "muted" }, "No image matches these filters."));
    nextAfter = page.next_after;
    more.hidden = nextAfter === null;
  } catch (error) {
    toast(`Could not load images: ${(error as Error).message}`, "error");
  }
}

function tile(row: Row): HTMLElement {
  const what = row.classes.length ? row.classes.join(", ") : row.boxes === 0 ? "no objects" : "–";
  const facts = [row.split, row.labeled_by ? `by ${row.labeled_by}` : "", row.uncertainty === null ? "" : `unc. ${row.uncertainty.toFixed(2)}`]
    .filter(Boolean).join(" · ");
  return el("a", { class: "image-tile", href: `/projects/${projectId}/images/${row.id}/`, "data-image-id": String(row.id), title: row.name },
    el("div", { class: "thumb" }, el("img", { src: row.display_url || row.url, alt: row.name, loading: "lazy" })),
    el("div", { class: "body" },
      el("span", { class: "name" }, row.name),
      el("span", { class: "classes" }, what),
      el("span", { class: "muted" }, facts),
      el("span", {}, el("span", { class: `badge ${STATUS_TONE[row.status] ?? ""}`, "data-status": row.status }, STATUS_TEXT[row.status] ?? row.status)),
    ),
  );
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const query = filters().toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
  void load(false);
});
more.addEventListener("click", () => void load(true));
fillForm(new URLSearchParams(location.search));
void load(false);
