/** Discover (leads): the unlabeled pool in clusters, each a thumbnail grid. A lead names a
 * cluster (an existing class or a new one), removes the misfits and accepts: one
 * `POST .../bulk-labels/` per cluster, whose idempotency key is kept until the server has
 * answered, so a retry after a lost answer labels nothing twice. Name suggestions come from
 * the vision-language assist when an admin has turned it on. */
import { type BulkAnswer, bulkLabelBody, bulkSummary, type ClassRef, labeledIds } from "../grid/bulk";
import type { GridSelection } from "../grid/selection";
import { ThumbGrid, type Thumb } from "../grid/thumbGrid";
import { byId, el, errorText, request, toast, uuid4 } from "../lib/api";

interface Member {
  image_id: number;
  distance: number;
  url: string;
  display_url: string;
}

interface Cluster {
  id: number;
  size: number;
  members: Member[];
}

interface Clusters {
  method: string;
  pool_size: number;
  sampled: number;
  noise: number;
  clusters: Cluster[];
}

interface Assist {
  enabled: boolean;
  max_images: number;
}

// Transport failures and server trouble are retried with the same key, this long apart.
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000];

const root = byId("clusters");
const projectId = root.dataset.projectId;
const form = byId<HTMLFormElement>("cluster-form");
const list = byId("cluster-list");
const summary = byId("cluster-summary");
const classNames = byId<HTMLDataListElement>("class-names");
const classes: ClassRef[] = JSON.parse(byId("label-classes").textContent ?? "[]");
let assist: Assist = { enabled: false, max_images: 0 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function learnClass(labelClass: ClassRef): void {
  if (classes.some((c) => c.id === labelClass.id)) return;
  classes.push(labelClass);
  classNames.append(el("option", { value: labelClass.name }));
}

/** Sends one bulk request, retrying transport failures and 5xx with the same body (and so
 * the same key); a 4xx answer is final. */
async function sendBulk(body: Record<string, unknown>): Promise<{ status: number; data: BulkAnswer | null }> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const response = await request<BulkAnswer>("POST", `/api/projects/${projectId}/bulk-labels/`, body);
      if (response.status < 500 || attempt >= RETRY_DELAYS_MS.length) return response;
    } catch (error) {
      if (attempt >= RETRY_DELAYS_MS.length) throw error;
    }
    await sleep(RETRY_DELAYS_MS[attempt]);
  }
}

function clusterSection(cluster: Cluster): HTMLElement {
  const section = el("section", { class: "cluster panel", "data-cluster-id": String(cluster.id) });
  const name = el("input", { list: "class-names", maxlength: "100", placeholder: "class name", "aria-label": `name of cluster ${cluster.id}` });
  const accept = el("button", { type: "button", class: "primary" }, "Accept");
  const count = el("span", { class: "muted" });
  const result = el("p", { class: "muted cluster-result", role: "status" });
  const suggestions = el("span", { class: "row" });
  const gridHost = el("div", { class: "thumb-grid", tabindex: "0", "aria-label": `cluster ${cluster.id}` });
  let members = cluster.members;
  let key = uuid4(); // one request's key, kept until the server answers it
  const started = performance.now();
  let grid: ThumbGrid<Thumb>;

  const showCount = (selection: GridSelection<Thumb>) => {
    const n = selection.selected().length;
    count.textContent = `${n} of ${members.length} shown selected (${cluster.size} in the cluster)`;
    accept.textContent = `Accept ${n}`;
  };
  const build = () => {
    grid = new ThumbGrid<Thumb>(gridHost, members.map((m) => ({
      id: m.image_id, url: m.display_url || m.url, title: `image ${m.image_id}`,
    })), () => void submit(), showCount);
  };

  async function submit(): Promise<void> {
    if (!grid.allSeen()) {
      result.textContent = "Not accepted: the thumbnails had not all appeared yet.";
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = bulkLabelBody(name.value, classes, grid.selection.selected().map((t) => t.id), key,
        Math.round(performance.now() - started));
    } catch (error) {
      result.textContent = (error as Error).message;
      return;
    }
    accept.disabled = true;
    result.textContent = "Saving…";
    try {
      const response = await sendBulk(body);
      if (response.status !== 200 || !response.data) {
        result.textContent = `Not accepted: ${errorText(response.data) || `HTTP ${response.status}`}`;
        return;
      }
      const answer = response.data;
      key = uuid4(); // answered: the next accept is a new request
      learnClass(answer.label_class);
      result.textContent = bulkSummary(answer);
      const labeled = labeledIds(answer);
      members = members.filter((m) => !labeled.has(m.image_id));
      build();
    } catch (error) {
      result.textContent = `Not saved yet (${(error as Error).message}); Accept again retries the same request.`;
    } finally {
      accept.disabled = false;
    }
  }

  accept.addEventListener("click", () => void submit());
  const bar = el("div", { class: "cluster-bar" }, el("strong", {}, `Cluster ${cluster.id + 1}`), name, accept, count);
  if (assist.enabled) {
    const suggest = el("button", { type: "button" }, "Suggest names");
    suggest.addEventListener("click", async () => {
      suggest.disabled = true;
      const ids = members.slice(0, assist.max_images).map((m) => m.image_id);
      const response = await request<{ suggestions: string[] }>(
        "POST", `/api/projects/${projectId}/assist/cluster-names/`, { image_ids: ids }).catch(() => null);
      suggest.disabled = false;
      if (!response || response.status !== 200 || !response.data) {
        toast(`No suggestions: ${response ? errorText(response.data) || `HTTP ${response.status}` : "no answer"}`, "error");
        return;
      }
      suggestions.replaceChildren(...response.data.suggestions.map((text) => {
        const chip = el("button", { type: "button", class: "icon" }, text);
        chip.addEventListener("click", () => { name.value = text; });
        return chip;
      }));
    });
    bar.append(suggest, suggestions);
  }
  section.append(bar, gridHost, result);
  build();
  return section;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const params = new URLSearchParams();
  for (const [field, value] of new FormData(form).entries()) if (value !== "") params.set(field, String(value));
  summary.textContent = "Clustering…";
  list.replaceChildren();
  const response = await request<Clusters>("GET", `/api/projects/${projectId}/clusters/?${params}`).catch(() => null);
  if (!response || response.status !== 200 || !response.data) {
    summary.textContent = "";
    toast(`No clusters: ${response ? errorText(response.data) || `HTTP ${response.status}` : "no answer"}`, "error");
    return;
  }
  const found = response.data;
  summary.textContent = `${found.clusters.length} clusters of ${found.sampled} images (${found.pool_size} unlabeled`
    + `${found.noise ? `, ${found.noise} in no cluster` : ""}).`;
  list.replaceChildren(...found.clusters.map(clusterSection));
});

request<Assist>("GET", `/api/projects/${projectId}/assist/`).then((response) => {
  if (response.status === 200 && response.data) assist = response.data;
}).catch(() => undefined);
