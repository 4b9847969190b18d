/** One image in the editor, opened by a lead from the image browser or review: no task and
 * no lease (the annotators' queue is untouched). It starts from the image's current label,
 * else the deployed model's pre-label; saving stores the lead's own label. */
import { BoxEditor, isTyping, payloadBox, type EditorBox, type Labels } from "../editor/boxEditor";
import { renderBoxRows, renderPolygonRows } from "../editor/boxRows";
import { clampBox } from "../editor/geometry";
import { type EditorPolygon, type PolygonLabels, fromPayload, toPayload } from "../editor/polygon";
import { PolygonEditor, serverBoxAssist } from "../editor/polygonEditor";
import { byId, call, el, toast } from "../lib/api";
import "../styles/lead.css";

interface LabelClass {
  id: number;
  name: string;
  color: string;
  hotkey: string;
}

type StoredPolygon = { label: number; points?: number[][]; rings?: number[][][]; score?: number };

interface Work {
  image: { id: number; name: string; url: string; display_url: string; width: number; height: number; split: string };
  prediction: null | {
    id: number; model_version: number;
    payload: { boxes?: Array<EditorBox & { score?: number }>; polygons?: StoredPolygon[]; labels?: number[] };
  };
  label_classes: LabelClass[];
  task_type: "detection" | "classification" | "segmentation";
  label: null | {
    annotation_id: number; payload: { boxes?: EditorBox[]; polygons?: StoredPolygon[]; labels?: number[] };
    kind: string; author: string | null; review_status: string;
  };
}

const root = byId("image-edit");
const imageId = Number(root.dataset.imageId);
const stage = byId("stage");
const saveButton = byId<HTMLButtonElement>("save");
const noObjects = byId<HTMLButtonElement>("no-objects");
const statusNode = byId("save-state");
const classList = byId("class-list");
const boxList = byId("box-list");
const info = byId("image-info");
const note = byId("label-note");
const emptyNode = byId("empty");
const notice = byId("notice");
const comment = byId<HTMLTextAreaElement>("comment");
let work: Work | null = null;
let classById = new Map<number, LabelClass>();

const classStyle = {
  name: (label: number) => classById.get(label)?.name ?? `class ${label}`,
  color: (label: number) => classById.get(label)?.color ?? "#888888",
};
const polygonEditor = root.dataset.taskType === "segmentation"
  ? new PolygonEditor(stage, classStyle, () => renderSidebar(), serverBoxAssist(() => imageId), showNotice)
  : null;
const boxEditor = polygonEditor ? null : new BoxEditor(stage, classStyle, () => renderSidebar());
const editor: BoxEditor | PolygonEditor = polygonEditor ?? boxEditor!;

function startingPolygons(w: Work): PolygonLabels {
  const source = w.label?.payload ?? w.prediction?.payload;
  const polygons = (source?.polygons ?? [])
    .map((polygon) => fromPayload({ ...polygon, score: w.label ? undefined : polygon.score }, w.image.width, w.image.height, !w.label))
    .filter((polygon): polygon is EditorPolygon => polygon !== null);
  return { polygons };
}

function startingLabels(w: Work): Labels {
  const source = w.label?.payload ?? w.prediction?.payload;
  if (w.task_type === "classification") return { boxes: [], tags: [...(source?.labels ?? []).slice(0, w.label ? undefined : 1)] };
  const boxes: EditorBox[] = (source?.boxes ?? []).map((box) => ({
    ...clampBox(box, w.image.width, w.image.height), label: box.label, score: w.label ? null : (box as { score?: number }).score ?? null,
    fromModel: !w.label, ignore: box.ignore === true, difficult: box.difficult === true,
  }));
  return { boxes, tags: [] };
}

function setState(text: string, state = "saved"): void {
  statusNode.textContent = text;
  statusNode.dataset.state = state;
}

function applyClass(id: number, additive: boolean): void {
  if (!work) return;
  if (boxEditor && work.task_type === "classification") {
    const tags = boxEditor.history.current.tags;
    boxEditor.commit({ ...boxEditor.history.current, tags: additive ? (tags.includes(id) ? tags.filter((t) => t !== id) : [...tags, id]) : [id] });
  } else if (!editor.setLabelOfSelected(id)) {
    editor.drawLabel = id;
    renderSidebar();
  }
}

function renderSidebar(): void {
  if (!work) return;
  const tags = boxEditor?.labels.tags ?? [];
  const selectedLabel = editor.selectedLabel();
  classList.replaceChildren(...work.label_classes.map((c) => {
    const active = work!.task_type === "classification" ? tags.includes(c.id) : (selectedLabel ?? editor.drawLabel) === c.id;
    const row = el("button", { type: "button", class: `class-row${active ? " active" : ""}`, "data-class-id": String(c.id) },
      el("span", { class: "swatch", style: `background:${c.color}` }), el("kbd", {}, c.hotkey || "·"), el("span", { class: "class-name" }, c.name));
    row.addEventListener("click", (e) => applyClass(c.id, e.shiftKey));
    return row;
  }));
  if (polygonEditor) renderPolygonRows(boxList, polygonEditor, (label) => classById.get(label));
  else if (work.task_type === "detection") renderBoxRows(boxList, boxEditor!, (label) => classById.get(label));

}

function showNotice(text: string): void {
  notice.textContent = text;
  notice.hidden = false;
}

async function save(empty = false): Promise<void> {
  if (!work) return;
  notice.hidden = true;
  let payload: Record<string, unknown>;
  if (polygonEditor) {
    const polygons = polygonEditor.history.current.polygons;
    if (polygonEditor.drawing) return showNotice("Not saved: a shape is still open; close it (Enter) or drop it (Esc).");
    if (!empty && polygons.length === 0) {
      return showNotice("Not saved: outline the objects, or press \"No objects here\" if the image has none.");
    }
    payload = { polygons: polygons.map(toPayload) };
  } else {
    const labels = boxEditor!.history.current;
    payload = work.task_type === "classification" ? { labels: labels.tags }
      : { boxes: labels.boxes.map(payloadBox) };
    if (work.task_type === "classification" && labels.tags.length === 0) return showNotice("Not saved: choose a class first.");
    if (work.task_type === "detection" && !empty && labels.boxes.length === 0) {
      return showNotice("Not saved: draw the boxes, or press \"No objects here\" if the image has none.");
    }
  }
  saveButton.disabled = true;
  setState("Saving…", "saving");
  try {
    await call("POST", `/api/images/${imageId}/label/`, { payload, empty, comment: comment.value });
    await open();
    setState("Label saved");
    toast("Your label is now this image's label.");
  } catch (error) {
    setState("Not saved", "offline");
    toast((error as Error).message, "error");
  } finally {
    saveButton.disabled = false;
  }
}

async function open(): Promise<void> {
  try {
    work = await call<Work>("GET", `/api/images/${imageId}/work/`);
  } catch (error) {
    emptyNode.textContent = `Could not open the image: ${(error as Error).message}`;
    return;
  }
  classById = new Map(work.label_classes.map((c) => [c.id, c]));
  if (!classById.has(editor.drawLabel)) editor.drawLabel = work.label_classes[0]?.id ?? 0;
  const image = new Image();
  image.src = work.image.display_url || work.image.url;
  await image.decode();
  const { width, height, url } = work.image;
  if (polygonEditor) polygonEditor.load(image, width, height, url, startingPolygons(work));
  else boxEditor!.load(image, width, height, url, startingLabels(work), work.task_type === "detection");
  emptyNode.hidden = true;
  noObjects.hidden = work.task_type === "classification";
  const label = work.label;
  note.hidden = false;
  note.replaceChildren(label
    ? el("span", {}, `Current label by ${label.author ?? "an import"} (${label.kind}, ${label.review_status}).`)
    : el("span", {}, work.prediction ? `Not labeled yet: showing model v${work.prediction.model_version}'s pre-label.` : "Not labeled yet."));
  info.textContent = `${work.image.name} · ${work.image.width}×${work.image.height} · ${work.image.split}`;
  root.dataset.loaded = "true";
  if (statusNode.dataset.state === "saved" && statusNode.textContent === "Loading…") setState("Nothing changed");
  renderSidebar();
}

const actions: Record<string, () => void> = {
  save: () => void save(),
  "no-objects": () => void save(true),
  undo: () => editor.undo(),
  redo: () => editor.redo(),
  fit: () => editor.fit(),
  "box-assist": () => polygonEditor?.setAssistMode(!polygonEditor.assistMode),
};
for (const button of Array.from(root.querySelectorAll<HTMLButtonElement>("[data-action]"))) {
  button.addEventListener("click", () => {
    button.blur();
    actions[button.dataset.action!]?.();
  });
}

window.addEventListener("keydown", (e) => {
  if (isTyping(e) || !work) return;
  const ctrl = e.ctrlKey || e.metaKey;
  if (ctrl && e.key.toLowerCase() === "z") {
    e.preventDefault();
    if (e.shiftKey) editor.redo();
    else editor.undo();
    return;
  }
  if (ctrl || e.altKey || e.repeat) return;
  const pressed = (e.code.startsWith("Digit") ? e.code.slice(5) : e.key).toLowerCase();
  const hotkey = work.label_classes.find((c) => c.hotkey && c.hotkey.toLowerCase() === pressed);
  if (hotkey) {
    e.preventDefault();
    applyClass(hotkey.id, e.shiftKey);
  } else if (e.key === "Enter") {
    e.preventDefault();
    // An open shape closes first; the next Enter saves.
    if (!polygonEditor?.closeDrawing()) void save();
  } else if (e.key === "Delete" || e.key === "Backspace") {
    e.preventDefault();
    editor.deleteSelected();
  } else if (e.key === "Escape") {
    if (polygonEditor) polygonEditor.escape();
    else editor.select(-1);
  } else if (polygonEditor && e.key.toLowerCase() === "b") {
    e.preventDefault();
    polygonEditor.setAssistMode(!polygonEditor.assistMode);
  }
});

// Back to where the lead came from (the browser with its filters, or review), when that was here.
const back = byId<HTMLAnchorElement>("back");
if (document.referrer.startsWith(`${location.origin}/projects/${root.dataset.projectId}/`)) {
  back.href = document.referrer;
  if (document.referrer.includes("/review/")) back.textContent = "Back to review";
}

void open();
