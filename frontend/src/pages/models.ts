/** Models and training: runs with live progress, versions with their backend and metrics,
 * and the primary metric per version as a chart. Admins also start/cancel runs and deploy
 * or roll back; leads read the page only (the controls are not drawn for them). */
import { CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip } from "chart.js";
import { ApiError, byId, call, callAll, el, type Page, toast } from "../lib/api";
import "../styles/lead.css";

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Tooltip, Legend);

interface Run {
  id: number;
  status: string;
  progress: number;
  message: string;
  error: string;
  epoch: number;
  total_epochs: number;
  loss: number | null;
  live_metric: number | null;
  trigger: string;
  requested_by: string | null;
  model_version_number: number | null;
  created_at: string;
}

interface RunCurve {
  id: number;
  status: string;
  total_epochs: number;
  history: Array<{ epoch: number; loss: number | null; metric: number | null }>;
}

interface Version {
  id: number;
  number: number;
  backend: string;
  status: string;
  is_deployed: boolean;
  primary_metric: number | null;
  dataset_size: number;
  validation_size: number;
  comparison: Record<string, unknown>;
  created_at: string;
}

const root = byId("models");
const projectId = root.dataset.projectId;
const runsBody = byId("runs-body");
const versionsBody = byId("versions-body");
const canManage = root.dataset.canManage === "true";
const startButton = canManage ? byId<HTMLButtonElement>("start-training") : null;
let chart: Chart | null = null;
const curveCharts = new Map<number, { chart: Chart; epochs: number }>();
let pollTimer: ReturnType<typeof setTimeout> | null = null;

const ACTIVE = new Set(["queued", "running"]);
const fmt = (value: number | null | undefined, digits = 3) => (value === null || value === undefined ? "–" : value.toFixed(digits));

async function refresh(): Promise<void> {
  try {
    const [runPage, versions, curves] = await Promise.all([
      call<Page<Run>>("GET", `/api/projects/${projectId}/training-runs/?limit=100`),
      callAll<Version>(`/api/projects/${projectId}/model-versions/`),
      call<{ runs: RunCurve[] }>("GET", `/api/projects/${projectId}/training-curves/`),
    ]);
    const runs = runPage.results;
    renderRuns(runs);
    renderCurves(curves.runs);
    renderVersions(versions);
    renderChart(versions);
    const active = runs.some((run) => ACTIVE.has(run.status));
    if (startButton) startButton.disabled = active;
    if (pollTimer) clearTimeout(pollTimer);
    if (active) pollTimer = setTimeout(() => void refresh(), 2000);
  } catch (error) {
    toast(`Could not load training data: ${(error as Error).message}`, "error");
  }
}

function renderRuns(runs: Run[]): void {
  if (runs.length === 0) {
    runsBody.replaceChildren(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "No training runs yet.")));
    return;
  }
  runsBody.replaceChildren(
    ...runs.slice(0, 20).map((run) => {
      const tone = run.status === "succeeded" ? "ok" : run.status === "failed" ? "bad" : ACTIVE.has(run.status) ? "warn" : "";
      const progress = el("div", { class: "progress" }, el("span", { style: `width:${Math.round(run.progress * 100)}%` }));
      const actions = el("td", {});
      if (canManage && ACTIVE.has(run.status)) {
        const cancel = el("button", { type: "button", class: "danger" }, "Cancel");
        cancel.addEventListener("click", async () => {
          try {
            await call("POST", `/api/training-runs/${run.id}/cancel/`);
            void refresh();
          } catch (error) {
            toast((error as Error).message, "error");
          }
        });
        actions.append(cancel);
      }
      return el("tr", { "data-run-id": String(run.id) },
        el("td", {}, `#${run.id}`),
        el("td", {}, el("span", { class: `badge ${tone}` }, run.status)),
        el("td", {}, progress, el("span", { class: "muted" }, run.total_epochs ? ` epoch ${run.epoch}/${run.total_epochs}` : "")),
        el("td", {}, `loss ${fmt(run.loss)} · metric ${fmt(run.live_metric)}`),
        el("td", {}, run.error ? el("span", { class: "error" }, run.error) : run.message || (run.model_version_number ? `→ v${run.model_version_number}` : "")),
        el("td", { class: "muted" }, `${run.trigger}${run.requested_by ? ` by ${run.requested_by}` : ""}`),
        actions,
      );
    }),
  );
}

function renderVersions(versions: Version[]): void {
  if (versions.length === 0) {
    versionsBody.replaceChildren(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "No model versions yet.")));
    return;
  }
  versionsBody.replaceChildren(
    ...versions.map((version) => {
      const action = el("td", {});
      const floor = version.comparison?.floor as { passed?: boolean } | undefined;
      if (version.is_deployed) action.append(el("span", { class: "badge ok" }, "deployed"));
      // Below the deployment floor: the server refuses to deploy it, so no button offers to.
      else if (floor?.passed === false) action.append(el("span", { class: "badge warn" }, "below floor"));
      else if (canManage) {
        const deploy = el("button", { type: "button", "data-confirm": `Deploy v${version.number}? The queue is re-scored with it.` }, "Deploy");
        deploy.addEventListener("click", async (e) => {
          if (e.defaultPrevented) return;
          try {
            await call("POST", `/api/model-versions/${version.id}/deploy/`);
            toast(`v${version.number} deployed.`);
            void refresh();
          } catch (error) {
            toast((error as Error).message, "error");
          }
        });
        action.append(deploy);
      }
      const decision = typeof version.comparison?.reason === "string" ? version.comparison.reason : "";
      return el("tr", { "data-version": String(version.number) },
        el("td", {}, `v${version.number}`),
        el("td", { class: "backend" }, version.backend),
        el("td", { class: "status" }, version.status),
        el("td", {}, fmt(version.primary_metric)),
        el("td", {}, `${version.dataset_size} train / ${version.validation_size} val`),
        el("td", { class: "muted" }, decision),
        action,
      );
    }),
  );
}

function renderChart(versions: Version[]): void {
  const ordered = [...versions].sort((a, b) => a.number - b.number);
  const labels = ordered.map((v) => `v${v.number}`);
  const data = ordered.map((v) => v.primary_metric);
  if (chart) {
    chart.data.labels = labels;
    chart.data.datasets[0].data = data;
    chart.update();
    return;
  }
  chart = new Chart(byId<HTMLCanvasElement>("metric-chart"), {
    type: "line",
    data: { labels, datasets: [{ label: "primary metric (validation)", data, borderColor: "#2457d6", tension: 0.2 }] },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { suggestedMin: 0, suggestedMax: 1 } } },
  });
}

/** Per-epoch training loss and validation metric of each recent run, one chart a run. */
function renderCurves(runs: RunCurve[]): void {
  const host = byId("run-curves");
  const withHistory = runs.filter((run) => run.history.length > 0).slice(0, 6);
  if (withHistory.length === 0) {
    host.replaceChildren(el("p", { class: "muted" }, "No per-epoch history yet: a run's curves appear as it trains."));
    curveCharts.forEach(({ chart: c }) => c.destroy());
    curveCharts.clear();
    return;
  }
  for (const [id, entry] of curveCharts) {
    if (!withHistory.some((run) => run.id === id)) {
      entry.chart.destroy();
      curveCharts.delete(id);
    }
  }
  const panels = withHistory.map((run) => {
    const existing = curveCharts.get(run.id);
    const epochs = run.history.map((row) => String(row.epoch));
    const loss = run.history.map((row) => row.loss);
    const metric = run.history.map((row) => row.metric);
    if (existing) {
      if (existing.epochs !== run.history.length) {
        existing.chart.data.labels = epochs;
        existing.chart.data.datasets[0].data = loss;
        existing.chart.data.datasets[1].data = metric;
        existing.chart.update();
        existing.epochs = run.history.length;
      }
      return existing.chart.canvas.closest(".panel") as HTMLElement;
    }
    const canvas = el("canvas", { role: "img", "aria-label": `Run #${run.id}: training loss and validation metric per epoch` });
    const panel = el("div", { class: "panel", "data-run-curve": String(run.id) },
      el("strong", {}, `Run #${run.id}`), el("span", { class: "muted" }, ` · ${run.status} · ${run.history.length} epoch${run.history.length === 1 ? "" : "s"}`),
      el("div", { class: "chart-box" }, canvas));
    const curve = new Chart(canvas, {
      type: "line",
      data: {
        labels: epochs,
        datasets: [
          { label: "loss", data: loss, borderColor: "#e6194b", yAxisID: "loss", pointRadius: 2 },
          { label: "metric", data: metric, borderColor: "#2457d6", yAxisID: "metric", pointRadius: 2 },
        ],
      },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: {
          x: { title: { display: true, text: "epoch" } },
          loss: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: "loss" } },
          metric: { type: "linear", position: "right", suggestedMin: 0, suggestedMax: 1, grid: { drawOnChartArea: false },
                    title: { display: true, text: "validation metric" } },
        },
      },
    });
    curveCharts.set(run.id, { chart: curve, epochs: run.history.length });
    return panel;
  });
  host.replaceChildren(...panels);
}

startButton?.addEventListener("click", async () => {
  if (!startButton) return;
  startButton.disabled = true;
  try {
    await call("POST", `/api/projects/${projectId}/training-runs/`, {});
    toast("Training run queued.");
  } catch (error) {
    const running = error instanceof ApiError && error.status === 409;
    toast(running ? `A run is already active: ${error.message}` : (error as Error).message, "error");
  }
  void refresh();
});

void refresh();
