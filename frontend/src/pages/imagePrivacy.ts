/** An admin's view of one image's blurred regions: drag on the image to blur a missed region,
 * remove a false one (its pixels come back from the original) or restore it. Each change is
 * rendered by the server at once; the image shown is the served (blurred) file. */
import { byId, call, el, toast } from "../lib/api";
import { dragToBox } from "../lib/regionDraw";
import { svgRect } from "../lib/svgBoxes";
import "../styles/lead.css";

interface Region {
  id: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  source: string;
  label: string;
  score: number | null;
  removed: boolean;
}

interface BlurView {
  image: { id: number; name: string; width: number; height: number; url: string; display_url: string };
  state: string;
  renders: number;
  error: string;
  original_kept: boolean;
  original_url: string | null;
  regions: Region[];
}

const SVG_NS = "http://www.w3.org/2000/svg";
const root = byId("image-privacy");
const imageId = Number(root.dataset.imageId);
const stage = byId("privacy-stage");
const picture = byId<HTMLImageElement>("privacy-image");
const overlay = document.createElementNS(SVG_NS, "svg");
overlay.classList.add("privacy-regions");
stage.append(overlay);
const stateNode = byId("blur-state");
const originalLink = byId<HTMLAnchorElement>("original-link");
const regionsBody = byId("regions-body");
let view: BlurView | null = null;

const STATES: Record<string, string> = {
  pending: "Waiting for its blur run: no one is served this image yet.",
  blurred: "Blurred: everyone is served this render.",
  not_blurred: "Not blurred: blurring was off when this image came. Run the project's blur from its settings.",
};

function rect(region: { x1: number; y1: number; x2: number; y2: number }, kind: string): SVGRectElement {
  const node = svgRect(region);
  node.classList.add(kind);
  return node;
}

function render(): void {
  if (!view) return;
  const { image } = view;
  overlay.setAttribute("viewBox", `0 0 ${image.width} ${image.height}`);
  overlay.replaceChildren(...view.regions.map((r) => rect(r, r.removed ? "removed" : "active")));
  stateNode.textContent = `${STATES[view.state] ?? view.state} Renders: ${view.renders}.${view.error ? ` Last error: ${view.error}` : ""}`;
  originalLink.hidden = !view.original_url;
  if (view.original_url) originalLink.href = view.original_url;
  regionsBody.replaceChildren(...view.regions.map((region) => {
    const toggle = el("button", { type: "button", class: region.removed ? "" : "danger" }, region.removed ? "Restore" : "Remove");
    toggle.addEventListener("click", () => void change(`/api/blur-regions/${region.id}/`, "PATCH", { removed: !region.removed },
      region.removed ? "Region restored." : "Region removed; its pixels come back from the original."));
    const where = `${Math.round(region.x1)}, ${Math.round(region.y1)} – ${Math.round(region.x2)}, ${Math.round(region.y2)}`;
    return el("tr", { "data-region-id": String(region.id), class: region.removed ? "muted" : "" },
      el("td", {}, region.source), el("td", {}, region.label || "—"),
      el("td", {}, region.score === null ? "—" : region.score.toFixed(2)), el("td", {}, where),
      el("td", {}, region.removed ? "removed" : "blurred"), el("td", {}, toggle));
  }));
}

async function load(): Promise<void> {
  view = await call<BlurView>("GET", `/api/images/${imageId}/blur/`);
  // a render has a new file name, so the browser never shows a stale copy
  picture.src = view.image.display_url;
  render();
}

async function change(url: string, method: string, body: unknown, done: string): Promise<void> {
  try {
    await call(method, url, body);
    toast(done);
    await load();
  } catch (error) {
    toast((error as Error).message, "error");
  }
}

let start: { x: number; y: number } | null = null;
let draft: SVGRectElement | null = null;

function point(event: PointerEvent): { x: number; y: number } {
  const bounds = picture.getBoundingClientRect();
  return { x: event.clientX - bounds.left, y: event.clientY - bounds.top };
}

function scale(): number {
  return view ? picture.getBoundingClientRect().width / view.image.width : 1;
}

stage.addEventListener("pointerdown", (event) => {
  if (!view || event.button !== 0) return;
  start = point(event);
  stage.setPointerCapture(event.pointerId);
  event.preventDefault();
});

stage.addEventListener("pointermove", (event) => {
  if (!start || !view) return;
  const box = dragToBox(start, point(event), scale(), view.image.width, view.image.height, 1);
  draft?.remove();
  draft = box ? rect(box, "draft") : null;
  if (draft) overlay.append(draft);
});

stage.addEventListener("pointerup", (event) => {
  if (!start || !view) return;
  const box = dragToBox(start, point(event), scale(), view.image.width, view.image.height);
  start = null;
  draft?.remove();
  draft = null;
  if (box) void change(`/api/images/${imageId}/blur/regions/`, "POST", box, "Region blurred.");
});

void load().catch((error: Error) => toast(error.message, "error"));
