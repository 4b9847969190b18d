/**
 * The label stream: one image at a time with the deployed model's pre-labels, driven from
 * the keyboard. The next task and its image are fetched while the person works, so a
 * submit shows the next image at once; submits go through a persisted queue and are
 * retried with their idempotency key until the server has them.
 *
 * No label goes in unseen or unmeant: a submit counts only once its image has been painted
 * and on screen for MIN_VIEW_MS (a double or held Enter does not label the next image
 * blind), key repeats are ignored, a classification needs a class, and an image without
 * boxes or shapes is stored only by the explicit "no objects here" (N). A segmentation
 * project gets the polygon editor (with the GrabCut box assist), the others the box editor.
 */
import { type EditorBox, BoxEditor, type Labels, isTyping, payloadBox } from "../editor/boxEditor";
import { renderBoxRows, renderPolygonRows } from "../editor/boxRows";
import { clampBox } from "../editor/geometry";
import { type EditorPolygon, type PolygonLabels, fromPayload, toPayload } from "../editor/polygon";
import { PolygonEditor, serverBoxAssist } from "../editor/polygonEditor";
import { Stopwatch } from "../editor/stopwatch";
import { type Outcome, type PendingSubmit, type SendResult, SubmitQueue } from "../editor/submitQueue";
import { byId, el, errorText, request, toast, uuid4 } from "../lib/api";
import type { LabelClass } from "../lib/types";


interface PredictedBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  label: number;
  score?: number;
}

interface PredictedPolygon {
  label: number;
  points?: number[][];
  rings?: number[][][];
  score?: number;
}

interface NextTask {
  task: { id: number; slot: number; lease_expires_at: string; is_random_pick: boolean };
  image: { id: number; name: string; url: string; display_url: string; width: number; height: number; split: string };
  prediction: null | {
    id: number;
    model_version: number;
    payload: { boxes?: PredictedBox[]; polygons?: PredictedPolygon[]; labels?: number[]; probs?: number[] };
    class_ids: number[];
  };
  label_classes: LabelClass[];
  task_type: "detection" | "classification" | "segmentation";
  project_id: number;
  /** The caller's earlier label of this image that a lead rejected, and why. */
  rejected: null | { annotation_id: number; comment: string; reviewed_by: string | null };
}

interface Stats {
  open_tasks: number;
  leased_tasks: number;
  mine_today: number;
}

interface Prepared {
  next: NextTask;
  image: HTMLImageElement;
}

const root = byId("annotate");
const projectId = Number(root.dataset.projectId);
const userId = root.dataset.userId ?? "anonymous";
const stage = byId("stage");
const statusNode = byId("save-state");
const submitButton = byId<HTMLButtonElement>("submit");
const classList = byId("class-list");
const boxList = byId("box-list");
const imageInfo = byId("image-info");
const emptyNotice = byId("empty");
const helpDialog = byId<HTMLDialogElement>("help");
const flagDialog = byId<HTMLDialogElement>("flag-dialog");
const flagReason = byId<HTMLTextAreaElement>("flag-reason");
const toggleButton = byId<HTMLButtonElement>("toggle-prelabels");
const assistButton = byId<HTMLButtonElement>("box-assist");
const noObjectsButton = byId<HTMLButtonElement>("no-objects");
const notice = byId("notice");
const reviewNote = byId("review-note");
const progressNode = byId("progress");
const brightnessInput = byId<HTMLInputElement>("brightness");
const contrastInput = byId<HTMLInputElement>("contrast");

let classes: LabelClass[] = [];
let classById = new Map<number, LabelClass>();
let current: Prepared | null = null;
/** The labels the shown image started with (pre-labels), to tell an accept from a correction. */
let initial: Labels | PolygonLabels = { boxes: [], tags: [] };
let prefetched: Prepared | null = null;
let prefetching: Promise<void> | null = null;
let waitingForTask = false;
let leaseLost = false;
const stopwatch = new Stopwatch();
const EMPTY_RETRY_MS = 20_000;
const RETRY_NEXT_MS = 5_000;
/** How long an image must have been on screen before a submit of it counts: longer than
 * the gap of a double press, shorter than any real look. */
const MIN_VIEW_MS = 300;
/** The task whose image is painted, and since when (performance.now()). */
let painted: { taskId: number; at: number } | null = null;
/** Labels done today and tasks left, as the server last said, plus this page's submits since. */
let progress: { doneToday: number; left: number } | null = null;
const STATS_REFRESH_MS = 30_000;
const draftsKey = `vision:drafts:${userId}`;
const segmentation = root.dataset.taskType === "segmentation";
/** Unsubmitted edits kept for this many tasks at most (the shown and the prefetched one, and a few before). */
const MAX_DRAFTS = 5;

const classStyle = {
  name: (label: number) => classById.get(label)?.name ?? `class ${label}`,
  color: (label: number) => classById.get(label)?.color ?? "#888888",
};
function edited(): void {
  hideNotice();
  saveDraft();
  renderSidebar();
}
const assist = serverBoxAssist(() => current?.next.image.id ?? null);
const polygonEditor = segmentation ? new PolygonEditor(stage, classStyle, edited, assist, showNotice) : null;
const boxEditor = polygonEditor ? null : new BoxEditor(stage, classStyle, edited);
const editor: BoxEditor | PolygonEditor = polygonEditor ?? boxEditor!;

const queue = new SubmitQueue(window.localStorage, `vision:submits:${userId}`, sendSubmit, reportOutcome);
queue.onChange(() => {
  renderSaveState();
  if (queue.state === "saved") {
    if (waitingForTask) void loadNext();
    else void prefetch();
  }
});

async function sendSubmit(item: PendingSubmit): Promise<SendResult> {
  return request("POST", `/api/tasks/${item.taskId}/annotations/`, item.body, { "Idempotency-Key": item.key });
}

function reportOutcome(outcome: Outcome): void {
  if (outcome.kind === "extra_opinion") {
    toast("Someone else finished that image first. Your work was kept as an extra opinion.");
  } else if (outcome.kind === "rejected") {
    toast(`A submit was refused (HTTP ${outcome.status}): ${outcome.detail || "no reason given"}`, "error");
  }
}

function renderSaveState(): void {
  const count = queue.pending.length;
  const state = navigator.onLine ? queue.state : count > 0 ? "offline" : "saved";
  statusNode.dataset.state = state;
  statusNode.textContent =
    state === "saved"
      ? "All work saved"
      : state === "saving"
        ? `Saving… (${count})`
        : `Offline: ${count} submit${count === 1 ? "" : "s"} kept in this browser, retrying`;
}

async function fetchNext(exclude: number[]): Promise<NextTask | null> {
  const query = exclude.length ? `?exclude=${exclude.join(",")}` : "";
  const response = await request<NextTask>("GET", `/api/projects/${projectId}/tasks/next/${query}`);
  if (response.status === 204) return null;
  if (response.status !== 200 || !response.data) {
    throw new Error(errorText(response.data) || `HTTP ${response.status}`);
  }
  return response.data;
}

async function prepare(next: NextTask): Promise<Prepared> {
  const image = new Image();
  image.src = next.image.display_url || next.image.url;
  await image.decode();
  return { next, image };
}

function busyTaskIds(): number[] {
  const ids = queue.pendingTaskIds();
  if (current) ids.push(current.next.task.id);
  return ids;
}

/** Claim the following task and decode its image now, while the person is still working.
 * Waits until queued submits have landed: a user holds at most two leases. */
async function prefetch(): Promise<void> {
  if (prefetched || prefetching || !current || queue.pending.length > 0) return;
  prefetching = (async () => {
    try {
      const next = await fetchNext(busyTaskIds());
      if (next && next.task.id !== current?.next.task.id) {
        prefetched = await prepare(next);
        root.dataset.prefetched = String(next.task.id);
      }
    } catch {
      // Offline or the server is busy: the submit path fetches on demand instead.
    } finally {
      prefetching = null;
    }
  })();
  return prefetching;
}

async function loadNext(): Promise<void> {
  waitingForTask = false;
  if (prefetching) await prefetching;
  if (prefetched) {
    const ready = prefetched;
    prefetched = null;
    delete root.dataset.prefetched;
    show(ready);
    return;
  }
  try {
    const next = await fetchNext(busyTaskIds());
    if (next === null) {
      showEmpty("Nothing left to label in this project right now.", true);
      return;
    }
    show(await prepare(next));
  } catch {
    // The queue's drain retries this too; the timer covers a failure with nothing queued.
    waitingForTask = true;
    showEmpty("Waiting for the connection… Your submits are kept in this browser.");
    setTimeout(() => waitingForTask && void loadNext(), RETRY_NEXT_MS);
  }
}

function showEmpty(message: string, retry = false): void {
  current = null;
  emptyNotice.textContent = message;
  emptyNotice.hidden = false;
  root.dataset.taskId = "";
  // Rejected reviews and new uploads refill the queue; look again now and then.
  if (retry) setTimeout(() => current === null && !waitingForTask && void loadNext(), EMPTY_RETRY_MS);
}

function startingPolygons(next: NextTask): PolygonLabels {
  const { width, height } = next.image;
  const polygons = (next.prediction?.payload.polygons ?? [])
    .map((polygon) => fromPayload(polygon, width, height, true))
    .filter((polygon): polygon is EditorPolygon => polygon !== null);
  return { polygons };
}

function startingLabels(next: NextTask): Labels {
  const payload = next.prediction?.payload;
  if (next.task_type === "classification") return { boxes: [], tags: [...(payload?.labels ?? [])] };
  const boxes: EditorBox[] = (payload?.boxes ?? []).map((box) => ({
    ...clampBox(box, next.image.width, next.image.height),
    label: box.label,
    score: typeof box.score === "number" ? box.score : null,
    fromModel: true,
  }));
  return { boxes, tags: [] };
}

function show(prepared: Prepared): void {
  const { next } = prepared;
  current = prepared;
  painted = null;
  leaseLost = false;
  emptyNotice.hidden = true;
  hideNotice();
  noObjectsButton.hidden = next.task_type === "classification";
  classes = next.label_classes;
  classById = new Map(classes.map((c) => [c.id, c]));
  if (!classById.has(editor.drawLabel)) editor.drawLabel = classes[0]?.id ?? 0;
  const { width, height, url } = next.image;
  if (polygonEditor) {
    const polygons = startingPolygons(next);
    initial = polygons;
    polygonEditor.load(prepared.image, width, height, url, polygons);
  } else {
    const labels = startingLabels(next);
    initial = labels;
    boxEditor!.load(prepared.image, width, height, url, labels, next.task_type === "detection");
  }
  const draft = loadDrafts()[String(next.task.id)];
  // Work left unsubmitted on this task (a reload, a closed tab): back as it was; undo
  // returns to the pre-labels.
  if (draft && (polygonEditor ? polygonEditor.restore(draft) : (boxEditor!.commit(draft as Labels), true))) {
    toast("Your unsubmitted changes to this image are back.");
  }
  renderReviewNote(next);
  root.dataset.taskId = String(next.task.id);
  root.dataset.imageId = String(next.image.id);
  imageInfo.textContent = `${next.image.name} · ${next.image.width}×${next.image.height}` +
    (next.prediction ? ` · model v${next.prediction.model_version}` : " · no pre-labels") +
    (next.task.is_random_pick ? " · random pick" : "");
  renderSidebar();
  markPainted(next.task.id);
  void prefetch();
}

/** Mark when the browser has painted the new image (two frames later), and measure from the
 * submit. Viewing time and the submit gate start there; `data-armed` says when submits of
 * this image count. */
function markPainted(taskId: number): void {
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      if (current?.next.task.id !== taskId) return;
      performance.mark("vision:painted");
      if (performance.getEntriesByName("vision:submit", "mark").length > 0) {
        performance.measure("vision:submit-to-paint", "vision:submit", "vision:painted");
        performance.clearMarks("vision:submit");
      }
      painted = { taskId, at: performance.now() };
      stopwatch.start();
      root.dataset.painted = String(taskId);
      setTimeout(() => {
        if (painted?.taskId === taskId) root.dataset.armed = String(taskId);
      }, MIN_VIEW_MS);
    }),
  );
}

/** The shown image has been painted and on screen long enough for a decision about it. */
function seenLongEnough(): boolean {
  return (
    current !== null && painted !== null && painted.taskId === current.next.task.id &&
    performance.now() - painted.at >= MIN_VIEW_MS
  );
}

function showNotice(message: string): void {
  notice.textContent = message;
  notice.hidden = false;
}

function hideNotice(): void {
  notice.hidden = true;
  notice.textContent = "";
}

function labelsChanged(): boolean {
  return JSON.stringify(editor.history.current) !== JSON.stringify(initial);
}

function payloadOf(next: NextTask): Record<string, unknown> {
  if (polygonEditor) return { polygons: polygonEditor.history.current.polygons.map(toPayload) };
  const labels = boxEditor!.history.current;
  if (next.task_type === "classification") return { labels: labels.tags };
  return { boxes: labels.boxes.map(payloadBox) };
}

function submit(kind: "accept" | "correct" | "skip" | "flag", extra: Record<string, unknown> = {}): void {
  if (!current) return;
  if (!seenLongEnough()) {
    // A bounce or a press meant for the previous image: it must not decide this one.
    showNotice("Not submitted: this image had only just appeared. Look, then press again.");
    return;
  }
  hideNotice();
  const { next } = current;
  performance.clearMeasures("vision:submit-to-paint");
  performance.mark("vision:submit");
  const body: Record<string, unknown> = {
    kind,
    prediction_id: next.prediction?.id ?? null,
    time_spent_ms: stopwatch.elapsedMs(),
    ...extra,
  };
  if (kind === "correct" && body.payload === undefined) body.payload = payloadOf(next);
  queue.enqueue(next.task.id, body, uuid4());
  dropDraft(next.task.id);
  if (kind === "skip") toast("Skipped. It comes back to you once the rest of the queue is done.");
  if (kind === "flag") toast("Flagged as unclear. A lead will look at it; it stays out of training until then.");
  if (progress && (kind === "accept" || kind === "correct")) {
    progress = { doneToday: progress.doneToday + 1, left: Math.max(progress.left - 1, 0) };
  }
  renderProgress();
  current = null;
  void loadNext();
}

type Draft = Labels | PolygonLabels;

function loadDrafts(): Record<string, Draft> {
  try {
    return JSON.parse(window.localStorage.getItem(draftsKey) ?? "{}") as Record<string, Draft>;
  } catch {
    return {};
  }
}

function storeDrafts(drafts: Record<string, Draft>): void {
  const ids = Object.keys(drafts).slice(-MAX_DRAFTS);
  if (ids.length === 0) window.localStorage.removeItem(draftsKey);
  else window.localStorage.setItem(draftsKey, JSON.stringify(Object.fromEntries(ids.map((id) => [id, drafts[id]]))));
}

/** Keep the shown task's edits in this browser until they are submitted. */
function saveDraft(): void {
  if (!current) return;
  const drafts = loadDrafts();
  const id = String(current.next.task.id);
  delete drafts[id];
  if (labelsChanged()) drafts[id] = editor.history.current;
  storeDrafts(drafts);
}

function dropDraft(taskId: number): void {
  const drafts = loadDrafts();
  if (!(String(taskId) in drafts)) return;
  delete drafts[String(taskId)];
  storeDrafts(drafts);
}

function renderReviewNote(next: NextTask): void {
  const rejected = next.rejected;
  reviewNote.hidden = !rejected;
  if (!rejected) {
    reviewNote.replaceChildren();
    return;
  }
  const who = rejected.reviewed_by ? `${rejected.reviewed_by} (lead)` : "A lead";
  reviewNote.replaceChildren(
    el("strong", {}, `${who} rejected your earlier label of this image`),
    rejected.comment ? el("q", {}, rejected.comment) : el("span", { class: "muted" }, "No comment given."),
  );
}

async function refreshProgress(): Promise<void> {
  try {
    const response = await request<Stats>("GET", `/api/projects/${projectId}/stats/`);
    if (response.status !== 200 || !response.data) return;
    const stats = response.data;
    progress = { doneToday: stats.mine_today, left: stats.open_tasks + stats.leased_tasks };
    renderProgress();
  } catch {
    // Offline: the numbers stay as they were and the next refresh tries again.
  }
}

function renderProgress(): void {
  if (!progress) return;
  progressNode.textContent = `Today: ${progress.doneToday} done · ${progress.left} left`;
  progressNode.hidden = false;
}

/** Brightness and contrast of the shown image (view only: labels are unaffected), kept for the session. */
function applyImageFilter(): void {
  const brightness = Number(brightnessInput.value) / 100;
  const contrast = Number(contrastInput.value) / 100;
  stage.style.setProperty("--image-filter", brightness === 1 && contrast === 1 ? "none" : `brightness(${brightness}) contrast(${contrast})`);
  window.sessionStorage.setItem("vision:image-filter", JSON.stringify([brightnessInput.value, contrastInput.value]));
}

function restoreImageFilter(): void {
  try {
    const [brightness, contrast] = JSON.parse(window.sessionStorage.getItem("vision:image-filter") ?? "[]") as string[];
    if (brightness) brightnessInput.value = brightness;
    if (contrast) contrastInput.value = contrast;
  } catch {
    // A malformed value: start from 100 %.
  }
  applyImageFilter();
}

function resetImageFilter(): void {
  brightnessInput.value = "100";
  contrastInput.value = "100";
  applyImageFilter();
}

/** How many boxes or shapes the labels hold (what "no objects here" must not contradict). */
function shapeCount(): number {
  return polygonEditor ? polygonEditor.history.current.polygons.length : boxEditor!.history.current.boxes.length;
}

function submitLabels(): void {
  if (!current) return;
  if (polygonEditor) {
    if (polygonEditor.drawing) {
      showNotice("A shape is still open: close it (Enter, or click its first point) or drop it (Esc), then submit.");
      return;
    }
    if (shapeCount() === 0) {
      showNotice("No shapes on this image. Outline the objects, or if there are none, choose No objects here (N).");
      return;
    }
    submit(!labelsChanged() && current.next.prediction !== null ? "accept" : "correct");
    return;
  }
  const labels = boxEditor!.history.current;
  if (current.next.task_type === "classification" && labels.tags.length === 0) {
    showNotice("Choose a class first: press its key (shown beside it) or click it. None fits? Skip (S) or flag (F).");
    return;
  }
  if (current.next.task_type === "detection" && labels.boxes.length === 0) {
    showNotice("No boxes on this image. Draw the objects, or if there are none, choose No objects here (N).");
    return;
  }
  const unchanged = !labelsChanged() && current.next.prediction !== null;
  submit(unchanged ? "accept" : "correct");
}

/** The explicit "this image has no objects": the only way an empty detection or
 * segmentation is stored. */
function submitNoObjects(): void {
  if (!current || current.next.task_type === "classification") return;
  const shapes = shapeCount();
  if (shapes > 0) {
    const hidden = editor.showModel ? "" : " (some may be hidden: H shows them)";
    const what = polygonEditor ? `shape${shapes === 1 ? " is" : "s are"}` : `box${shapes === 1 ? " is" : "es are"}`;
    showNotice(`No objects here, but ${shapes} ${what} on the image${hidden}: ` +
      "delete them first (Del), or press Enter to submit them.");
    return;
  }
  const key = polygonEditor ? "polygons" : "boxes";
  const prediction = current.next.prediction;
  const prelabelEmpty = prediction !== null && (prediction.payload[key] ?? []).length === 0;
  if (prelabelEmpty) submit("accept", { empty: true });
  else submit("correct", { empty: true, payload: { [key]: [] } });
}

function applyClass(label: number, additive: boolean): void {
  if (!current) return;
  hideNotice();
  if (boxEditor && current.next.task_type === "classification") {
    const tags = boxEditor.history.current.tags;
    const next = additive ? (tags.includes(label) ? tags.filter((t) => t !== label) : [...tags, label]) : [label];
    boxEditor.commit({ ...boxEditor.history.current, tags: next });
    return;
  }
  if (!editor.setLabelOfSelected(label)) {
    editor.drawLabel = label;
    renderSidebar();
  }
}

function renderSidebar(): void {
  const next = current?.next;
  const probs = new Map<number, number>();
  if (next?.prediction?.payload.probs) {
    next.prediction.class_ids.forEach((id, i) => probs.set(id, next.prediction!.payload.probs![i]));
  }
  const tags = boxEditor?.labels.tags ?? [];
  const selectedLabel = editor.selectedLabel();
  classList.replaceChildren(
    ...classes.map((c) => {
      const active = next?.task_type === "classification" ? tags.includes(c.id) : (selectedLabel ?? editor.drawLabel) === c.id;
      const row = el(
        "button",
        { type: "button", class: `class-row${active ? " active" : ""}`, "data-class-id": String(c.id) },
        el("span", { class: "swatch", style: `background:${c.color}` }),
        el("kbd", {}, c.hotkey || "·"),
        el("span", { class: "class-name" }, c.name),
      );
      const p = probs.get(c.id);
      if (next?.task_type === "classification" && p !== undefined) row.append(el("span", { class: "prob" }, p.toFixed(2)));
      row.addEventListener("click", (e) => applyClass(c.id, e.shiftKey));
      return row;
    }),
  );
  if (polygonEditor) {
    renderPolygonRows(boxList, polygonEditor, (label) => classById.get(label));
  } else if (next?.task_type === "detection") {
    renderBoxRows(boxList, boxEditor!, (label) => classById.get(label));
  } else {
    boxList.replaceChildren();
  }
  const hasLabel = next?.task_type === "classification" ? tags.length > 0 : shapeCount() > 0;
  submitButton.textContent = current && !labelsChanged() && next?.prediction && hasLabel ? "Accept all (Enter)" : "Submit (Enter)";
  toggleButton.textContent = editor.showModel ? "Hide pre-labels (H)" : "Show pre-labels (H)";
  root.dataset.lease = leaseLost ? "lost" : "held";
  if (polygonEditor) {
    root.dataset.tool = polygonEditor.assistMode ? "assist" : polygonEditor.drawing ? "drawing" : "polygon";
    assistButton.classList.toggle("active", polygonEditor.assistMode);
  }
}

function openFlag(): void {
  if (!current) return;
  flagReason.value = "";
  stopwatch.pause();
  flagDialog.showModal();
  flagReason.focus();
}

byId<HTMLFormElement>("flag-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const reason = flagReason.value.trim();
  if (!reason) {
    flagReason.setCustomValidity("Say what is unclear.");
    flagReason.reportValidity();
    return;
  }
  flagDialog.close();
  stopwatch.resume();
  submit("flag", { flag_reason: reason });
});
flagReason.addEventListener("input", () => flagReason.setCustomValidity(""));
flagReason.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    byId<HTMLFormElement>("flag-form").requestSubmit();
  }
});
flagDialog.addEventListener("close", () => stopwatch.resume());

const actions: Record<string, () => void> = {
  submit: submitLabels,
  "no-objects": submitNoObjects,
  skip: () => submit("skip"),
  flag: openFlag,
  undo: () => editor.undo(),
  redo: () => editor.redo(),
  "toggle-prelabels": () => editor.toggleModelBoxes(),
  help: () => helpDialog.showModal(),
  fit: () => editor.fit(),
  "reset-filter": resetImageFilter,
  "box-assist": () => polygonEditor?.setAssistMode(!polygonEditor.assistMode),
};
brightnessInput.addEventListener("input", applyImageFilter);
contrastInput.addEventListener("input", applyImageFilter);
for (const button of root.querySelectorAll<HTMLButtonElement>("[data-action]")) {
  button.addEventListener("click", () => actions[button.dataset.action!]?.());
}
// A focused button would turn the next Enter or Space into a second click.
root.addEventListener("click", (e) => (e.target as HTMLElement).closest("button")?.blur());

window.addEventListener("keydown", (e) => {
  if (isTyping(e) || helpDialog.open || flagDialog.open) return;
  const ctrl = e.ctrlKey || e.metaKey;
  const key = e.key;
  if (ctrl && key.toLowerCase() === "z") {
    e.preventDefault();
    if (e.shiftKey) editor.redo();
    else editor.undo();
    return;
  }
  if (ctrl && key.toLowerCase() === "y") {
    e.preventDefault();
    editor.redo();
    return;
  }
  if (ctrl || e.altKey) return;
  if (e.repeat && ["enter", "s", "n", "f"].includes(key.toLowerCase())) {
    // A held key decides one image at most: the first press, never its repeats.
    e.preventDefault();
    return;
  }
  const pressed = (e.code.startsWith("Digit") ? e.code.slice(5) : key).toLowerCase();
  const hotkeyClass = classes.find((c) => c.hotkey && c.hotkey.toLowerCase() === pressed);
  if (hotkeyClass) {
    e.preventDefault();
    applyClass(hotkeyClass.id, e.shiftKey);
    return;
  }
  const handlers: Record<string, () => void> = {
    // An open shape closes first; the next Enter submits.
    Enter: () => polygonEditor?.closeDrawing() || submitLabels(),
    Delete: () => editor.deleteSelected(),
    Backspace: () => editor.deleteSelected(),
    s: actions.skip,
    n: submitNoObjects,
    f: openFlag,
    h: actions["toggle-prelabels"],
    "?": actions.help,
    r: actions.fit,
    "=": () => editor.zoomBy(1.25),
    "+": () => editor.zoomBy(1.25),
    "-": () => editor.zoomBy(0.8),
    Escape: () => (polygonEditor ? polygonEditor.escape() : editor.select(-1)),
    ...(polygonEditor ? { b: actions["box-assist"] } : {}),
    Tab: () => editor.selectNext(e.shiftKey ? -1 : 1),
  };
  const handler = handlers[key] ?? handlers[key.toLowerCase()];
  if (handler) {
    e.preventDefault();
    handler();
  }
});

async function heartbeat(): Promise<void> {
  for (const prepared of [current, prefetched]) {
    if (!prepared) continue;
    let status: number;
    try {
      status = (await request("POST", `/api/tasks/${prepared.next.task.id}/heartbeat/`)).status;
    } catch {
      continue; // offline: the next beat tries again
    }
    if (status !== 409) continue;
    if (prepared === prefetched) {
      prefetched = null;
      delete root.dataset.prefetched;
      void prefetch();
    } else if (prepared === current) {
      leaseLost = true;
      toast("Your hold on this image lapsed; a submit will still be kept, as an extra opinion.");
      renderSidebar();
    }
  }
}

/** On leaving the page, give back the prefetched task (never seen) and the shown one, unless
 * the shown one holds unsubmitted edits: that lease is kept, so a reload or a return within
 * the lease brings back the image with its draft (the oldest lease is served first); left for
 * good, it lapses after the lease TTL. Releasing a drafted task raced the reloaded page's
 * claim: with only its release landed, the still-held prefetched task came back instead. */
function releaseUnfinished(): void {
  const keep = current && labelsChanged() ? current : null;
  for (const prepared of [current, prefetched]) {
    if (!prepared || prepared === keep) continue;
    // keepalive: the release still goes out while the page unloads.
    void request("POST", `/api/tasks/${prepared.next.task.id}/release/`, undefined, {}, { keepalive: true })
      .catch(() => {});
  }
}

document.addEventListener("visibilitychange", () => (document.hidden ? stopwatch.pause() : stopwatch.resume()));
window.addEventListener("online", () => {
  renderSaveState();
  void queue.flush();
});
window.addEventListener("offline", renderSaveState);
window.addEventListener("pagehide", releaseUnfinished);
setInterval(() => void heartbeat(), Number(root.dataset.heartbeatMs) || 30_000);
setInterval(() => void refreshProgress(), STATS_REFRESH_MS);
restoreImageFilter();
void refreshProgress();

renderSaveState();
void queue.flush();
void loadNext();
