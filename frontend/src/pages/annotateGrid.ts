/** The annotators' grid mode (classification): up to N claimed tasks that the deployed model
 * (or the one-shot proposals) puts in one class, as thumbnails (claimed at once by
 * `GET .../tasks/batch/`). The person removes the
 * misfits; Enter labels each selected image through the normal submit API (one annotation
 * per task, an Idempotency-Key each, queued and retried like the editor's submits); the
 * deselected tasks are released to the queue for the one-by-one editor. */
import { type Outcome, type PendingSubmit, type SendResult, SubmitQueue } from "../editor/submitQueue";
import { ThumbGrid, type Thumb } from "../grid/thumbGrid";
import { largestGroup } from "../grid/selection";
import { byId, el, errorText, request, toast, uuid4 } from "../lib/api";
import type { LabelClass } from "../lib/types";

interface WorkItem {
  task: { id: number };
  image: { id: number; name: string; url: string; display_url: string };
  prediction: { id: number; payload: { labels?: number[]; probs?: number[] }; class_ids: number[] } | null;
  label_classes: LabelClass[];
}

interface Tile extends Thumb {
  work: WorkItem;
}

// A grid shown this long, every thumbnail painted, before Enter counts: a double press
// cannot label the next batch unseen.
const SEEN_MS = 300;

const root = byId("annotate-grid");
const projectId = root.dataset.projectId;
const batch = Number(root.dataset.batch ?? 24);
const heartbeatMs = Number(root.dataset.heartbeatMs ?? 60000);
const host = byId("grid");
const title = byId("grid-class");
const classSelect = byId<HTMLSelectElement>("grid-class-select");
const notice = byId("grid-notice");
const saveState = byId("grid-save-state");
let grid: ThumbGrid<Tile> | null = null;
let held: WorkItem[] = [];
let shownAt = 0;
// Tasks the person sent to the one-by-one editor: not claimed for a grid again this visit.
const setAside = new Set<number>();

const queue = new SubmitQueue(window.localStorage, `vision:grid-submits:${root.dataset.userId}`, send, outcome);
queue.onChange(() => {
  saveState.textContent = { saved: "All work saved", saving: "Saving…", offline: "Offline: will retry" }[queue.state];
  saveState.dataset.state = queue.state;
});

async function send(item: PendingSubmit): Promise<SendResult> {
  return request("POST", `/api/tasks/${item.taskId}/annotations/`, item.body, { "Idempotency-Key": item.key });
}

function outcome(result: Outcome): void {
  if (result.kind === "extra_opinion") toast("Someone else finished one of these first; yours was kept as an extra opinion.");
  if (result.kind === "rejected") toast(`Not saved: ${result.detail}`, "error");
}

function say(text: string): void {
  notice.textContent = text;
  notice.hidden = !text;
}

function proposedClass(work: WorkItem): number | null {
  return work.prediction?.payload.labels?.[0] ?? null;
}

function confidence(work: WorkItem): string | undefined {
  const probs = work.prediction?.payload.probs;
  return probs?.length ? `${Math.round(100 * Math.max(...probs))}%` : undefined;
}

async function claim(): Promise<WorkItem[]> {
  const exclude = [...queue.pendingTaskIds(), ...setAside].join(",");
  const response = await request<{ items: WorkItem[] }>(
    "GET", `/api/projects/${projectId}/tasks/batch/?size=${batch}&exclude=${exclude}`);
  if (response.status !== 200 || !response.data) throw new Error(errorText(response.data) || `the queue answered HTTP ${response.status}`);
  return response.data.items;
}

function release(items: WorkItem[]): void {
  for (const work of items) void request("POST", `/api/tasks/${work.task.id}/release/`);
}

async function loadBatch(): Promise<void> {
  say("");
  host.replaceChildren(el("p", { class: "muted" }, "Claiming images…"));
  const claimed = await claim();
  const group = largestGroup(claimed, proposedClass);
  if (!group) {
    release(claimed);
    grid = null;
    held = [];
    host.replaceChildren();
    title.textContent = "nothing to verify";
    say(claimed.length ? "None of the next images has a proposed class; label them one by one."
      : "The queue is empty for you: nothing left to label.");
    return;
  }
  release(claimed.filter((work) => !group.items.includes(work)));
  held = group.items;
  const classes = held[0].label_classes;
  classSelect.replaceChildren(...classes.map((c) => el("option", { value: String(c.id) }, c.name)));
  classSelect.value = String(group.classId);
  title.textContent = classes.find((c) => c.id === group.classId)?.name ?? `class ${group.classId}`;
  grid = new ThumbGrid<Tile>(host, held.map((work) => ({
    id: work.task.id, url: work.image.display_url || work.image.url, title: work.image.name, score: confidence(work), work,
  })), submit);
  shownAt = performance.now();
  host.focus();
}

function submit(): void {
  if (!grid) return;
  if (!grid.allSeen() || performance.now() - shownAt < SEEN_MS) {
    say("Not submitted: the images had not all appeared yet. Look, then press again.");
    return;
  }
  const classId = Number(classSelect.value);
  const share = Math.round((performance.now() - shownAt) / Math.max(1, grid.selection.items.length));
  for (const tile of grid.selection.selected()) {
    const prediction = tile.work.prediction;
    const body: Record<string, unknown> = proposedClass(tile.work) === classId
      ? { kind: "accept", prediction_id: prediction?.id ?? null, time_spent_ms: share }
      : { kind: "correct", payload: { labels: [classId] }, prediction_id: prediction?.id ?? null, time_spent_ms: share };
    queue.enqueue(tile.id, body, uuid4());
  }
  const aside = grid.selection.deselected().map((tile) => tile.work);
  for (const work of aside) setAside.add(work.task.id);
  release(aside);
  toast(`${grid.selection.selected().length} labeled as ${classSelect.selectedOptions[0]?.text}; ${aside.length} back to the queue.`);
  grid = null;
  void loadBatch().catch((error) => say((error as Error).message));
}

classSelect.addEventListener("change", () => {
  title.textContent = classSelect.selectedOptions[0]?.text ?? "";
  host.focus();
});
byId("grid-submit").addEventListener("click", submit);
setInterval(() => {
  for (const work of held) void request("POST", `/api/tasks/${work.task.id}/heartbeat/`);
}, heartbeatMs);

if (root.dataset.unsupported !== undefined) {
  title.textContent = "classification only";
  say("The grid verifies one class per image; this is a detection project. Use the one-by-one editor.");
} else {
  void queue.flush();
  loadBatch().catch((error) => say((error as Error).message));
}
