/** Report charts: fills #report-body with the report named by its data-report attribute
 * (the reports page shell sets it from the navigation), one chart per view, each with a
 * "Download CSV" link to the API's ?format=csv for the table behind it. */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Tooltip,
} from "chart.js";

import { call, el } from "../lib/api";
import "./reports.css";
import "../styles/lead.css";
import {
  armSeries,
  column,
  csvUrl,
  editsPerImage,
  formatCell,
  labels,
  num,
  points,
  type Report,
  reportUrl,
  type Row,
} from "./data";

Chart.register(
  BarController, BarElement, CategoryScale, Filler, Legend, LinearScale, LineController, LineElement,
  LogarithmicScale, PointElement, ScatterController, Tooltip,
);

const COLORS = ["#2457d6", "#e6194b", "#1e7f4f", "#a86200", "#7b3fb3", "#0f8ea8", "#b42318"];
const charts: Chart[] = [];

interface View {
  title: string;
  table: string;
  config?: ChartConfiguration;
  html?: HTMLElement;
}

function section(projectId: string, report: string, view: View): HTMLElement {
  const download = el("a", { href: csvUrl(projectId, report, view.table), download: "", class: "button" }, "Download CSV");
  const head = el("div", { class: "report-head" }, el("h2", {}, view.title), download);
  const box = el("section", { class: "report-view", "data-table": view.table }, head);
  if (view.config) {
    // The label names the series drawn, for screen readers (a canvas has no text).
    const series = view.config.data.datasets.map((d) => d.label).filter(Boolean);
    const canvas = el("canvas", { role: "img", "aria-label": series.length ? `${view.title}: ${series.join(", ")}` : view.title });
    box.append(el("div", { class: "report-chart" }, canvas));
    charts.push(new Chart(canvas, view.config));
  }
  if (view.html) box.append(view.html);
  return box;
}

function dataTable(rows: Row[], limit = 50): HTMLElement {
  if (!rows.length) return el("p", { class: "muted" }, "No data yet.");
  const keys = Object.keys(rows[0]);
  const head = el("tr", {}, ...keys.map((k) => el("th", {}, k.replace(/_/g, " "))));
  const body = rows.slice(0, limit).map((row) => el("tr", {}, ...keys.map((k) => el("td", {}, formatCell(row[k])))));
  const table = el("table", { class: "data" }, el("thead", {}, head), el("tbody", {}, ...body));
  const note = rows.length > limit ? el("p", { class: "muted" }, `First ${limit} of ${rows.length} rows; the CSV has all.`) : "";
  return el("div", { class: "report-table" }, table, note);
}

function bar(names: string[], series: Array<{ label: string; data: Array<number | null> }>, stacked = false,
             yTitle = ""): ChartConfiguration {
  return {
    type: "bar",
    data: { labels: names, datasets: series.map((s, i) => ({ ...s, backgroundColor: COLORS[i % COLORS.length] })) },
    options: { responsive: true, scales: { x: { stacked }, y: { stacked, beginAtZero: true, title: { display: !!yTitle, text: yTitle } } } },
  };
}

function line(names: string[], series: Array<{ label: string; data: Array<number | null> }>, yTitle = ""): ChartConfiguration {
  return {
    type: "line",
    data: { labels: names, datasets: series.map((s, i) => ({ ...s, borderColor: COLORS[i % COLORS.length], pointRadius: 2 })) },
    options: { responsive: true, scales: { y: { beginAtZero: true, title: { display: !!yTitle, text: yTitle } } } },
  };
}

function learningCurve(report: Report): View[] {
  const { versions, fit_curve: fit, arms } = report.tables;
  const target = num(report.target_metric);
  const datasets: ChartConfiguration<"scatter">["data"]["datasets"] = [
    { label: "model versions", data: points(versions, "train_labels", "primary_metric"), backgroundColor: COLORS[0], pointRadius: 5 },
    { label: "fitted curve", data: points(fit, "labels", "metric"), showLine: true, borderColor: COLORS[2], borderDash: [6, 4], pointRadius: 0 },
  ];
  if (target !== null && fit.length) {
    const xs = fit.map((r) => num(r.labels) ?? 0);
    datasets.push({ label: "target", data: [{ x: Math.min(...xs), y: target }, { x: Math.max(...xs), y: target }],
                    showLine: true, borderColor: COLORS[1], pointRadius: 0 });
  }
  const views: View[] = [{
    title: "Primary metric against training labels", table: "versions",
    config: { type: "scatter", data: { datasets },
              options: { scales: { x: { type: "logarithmic", title: { display: true, text: "training labels" } },
                                   y: { title: { display: true, text: "primary metric" } } } } },
  }];
  if (arms.length) {
    const names = [...new Set(arms.map((r) => String(r.version)))];
    views.push({
      title: "Pre-labels accepted unchanged: uncertainty queue vs random control", table: "arms",
      config: bar(names.map((v) => `v${v}`), [
        { label: "served by the strategy", data: armSeries(arms, "strategy", names) },
        { label: "served at random", data: armSeries(arms, "random", names) },
      ], false, "share accepted"),
    });
  }
  return views;
}

function accuracy(report: Report): View[] {
  const { versions, per_class: perClass } = report.tables;
  const metric = String(report.primary_metric);
  // Beside the primary metric: mAP@0.5 for a detector, accuracy for a classifier (whose
  // primary metric is macro-F1).
  const second = metric.startsWith("map") ? "map50" : metric === "accuracy" ? "macro_f1" : "accuracy";
  const views: View[] = [{
    title: "Accuracy per model version (validation split)", table: "versions",
    config: line(labels(versions, "version").map((v) => `v${v}`), [
      { label: metric, data: column(versions, "primary_metric") },
      { label: second, data: column(versions, second) },
      ...(report.level !== null && report.level !== undefined
        ? [{ label: `accuracy at level ${report.level}`, data: column(versions, "level_accuracy") }] : []),
    ]),
  }];
  const latest = versions.length ? versions[versions.length - 1].version : null;
  const latestRows = perClass.filter((r) => r.version === latest);
  if (latestRows.length) {
    const hasPr = "precision" in latestRows[0] && "recall" in latestRows[0];
    const key = "ap50_95" in latestRows[0] ? "ap50_95" : "f1";
    const series = hasPr
      ? [{ label: "precision", data: column(latestRows, "precision") }, { label: "recall", data: column(latestRows, "recall") },
         ...(key in latestRows[0] ? [{ label: key, data: column(latestRows, key) }] : [])]
      : [{ label: key, data: column(latestRows, key) }];
    views.push({ title: hasPr ? `Precision and recall per class, v${latest}` : `Per class, v${latest} (${key})`,
                 table: "per_class", config: bar(labels(latestRows, "class_name"), series),
                 html: perClassTable(latestRows) });
  }
  const matrices = report.confusion_matrices as Array<{ version: number; classes: string[]; matrix: number[][] }>;
  const last = matrices?.[matrices.length - 1];
  if (last) views.push({ title: `Confusion matrix, v${last.version} (validation split)`, table: "per_class", html: confusionTable(last) });
  return views;
}

/** Per class: precision, recall, F1 (or AP) and support, as the evaluator stored them. */
function perClassTable(rows: Row[]): HTMLElement {
  const keys = ["precision", "recall", "f1", "ap50", "ap50_95", "support", "num_gt"].filter((k) => k in rows[0]);
  const head = el("tr", {}, el("th", {}, "class"), ...keys.map((k) => el("th", {}, k.replace(/_/g, " "))));
  const body = rows.map((row) => el("tr", { "data-class": String(row.class_name) }, el("td", {}, String(row.class_name)),
    ...keys.map((k) => el("td", { "data-key": k }, formatCell(row[k])))));
  return el("table", { class: "data per-class" }, el("thead", {}, head), el("tbody", {}, ...body));
}

/** Rows: the true class; columns: the predicted one. The margins give each class's recall
 * (its row's diagonal over the row) and precision (its column's diagonal over the column). */
function confusionTable(cm: { classes: string[]; matrix: number[][] }): HTMLElement {
  const n = cm.matrix.length;
  const max = Math.max(1, ...cm.matrix.flat());
  const name = (i: number) => cm.classes[i] ?? String(i);
  const rowSum = cm.matrix.map((cells) => cells.reduce((a, b) => a + b, 0));
  const colSum = Array.from({ length: n }, (_, j) => cm.matrix.reduce((a, cells) => a + (cells[j] ?? 0), 0));
  const ratio = (a: number, b: number) => (b ? (a / b).toFixed(2) : "–");
  const head = el("tr", {}, el("th", {}, "true \\ predicted"), ...cm.classes.map((c) => el("th", { scope: "col" }, c)),
    el("th", {}, "recall"));
  const rows = cm.matrix.map((cells, i) => el("tr", { "data-true": name(i) }, el("th", { scope: "row" }, name(i)),
    ...cells.map((count, j) => el("td", {
      class: i === j ? "diagonal" : "", "data-predicted": name(j),
      style: `background: rgba(${i === j ? "30, 127, 79" : "180, 35, 24"}, ${((count / max) * 0.55).toFixed(3)})`,
      title: `${count} ${name(i)} image${count === 1 ? "" : "s"} predicted ${name(j)}`,
    }, String(count))),
    el("td", { class: "recall" }, ratio(cells[i] ?? 0, rowSum[i]))));
  const precision = el("tr", {}, el("th", {}, "precision"),
    ...colSum.map((total, j) => el("td", { class: "precision" }, ratio(cm.matrix[j]?.[j] ?? 0, total))), el("td", {}, ""));
  const table = el("table", { class: "confusion", id: "confusion-matrix" }, el("thead", {}, head), el("tbody", {}, ...rows, precision));
  return el("div", { class: "report-table" }, table,
    el("p", { class: "muted" }, "Rows are the true class, columns the model's prediction; the diagonal is right."));
}

function prelabelQuality(report: Report): View[] {
  const { by_version: byVersion, by_annotator: byAnnotator } = report.tables;
  const names = labels(byVersion, "version").map((v) => `v${v}`);
  const edits = byVersion.map(editsPerImage);
  const kinds = ["added", "deleted", "moved", "class flips"];
  return [
    { title: "Pre-labels accepted unchanged, per model version", table: "by_version",
      config: bar(names, [{ label: "share accepted unchanged", data: column(byVersion, "acceptance_rate") }]) },
    { title: "Edits per pre-labeled image, per model version", table: "by_version",
      config: bar(names, kinds.map((k) => ({ label: k, data: edits.map((e) => e[k]) })), true, "edits per image") },
    { title: "Per annotator", table: "by_annotator",
      config: bar(labels(byAnnotator, "annotator"), [{ label: "share accepted unchanged", data: column(byAnnotator, "acceptance_rate") }]),
      html: dataTable(byAnnotator) },
  ];
}

function team(report: Report): View[] {
  const { by_annotator: byAnnotator, by_day: byDay, by_annotator_day: byAnnotatorDay } = report.tables;
  return [
    { title: "Images per hour, per annotator", table: "by_annotator",
      config: bar(labels(byAnnotator, "annotator"), [{ label: "images per hour", data: column(byAnnotator, "images_per_hour") }]),
      html: dataTable(byAnnotator) },
    { title: "Team output per day", table: "by_day",
      config: line(labels(byDay, "day"), [
        { label: "images", data: column(byDay, "submissions") },
        { label: "seconds per image", data: column(byDay, "seconds_per_image") },
      ]) },
    { title: `Per annotator and day (last ${report.daily_window_days} days)`, table: "by_annotator_day",
      html: dataTable(byAnnotatorDay) },
  ];
}

function agreement(report: Report): View[] {
  const { pairs } = report.tables;
  const key = ["box_f1", "mask_f1"].find((name) => pairs.length && name in pairs[0]) ?? "cohen_kappa";
  return [{
    title: `Inter-annotator agreement (${key.replace("_", " ")})`, table: "pairs",
    config: bar(pairs.map((p) => `${p.annotator_a} & ${p.annotator_b}`), [{ label: key, data: column(pairs, key) }]),
    html: dataTable(pairs),
  }];
}

function flags(report: Report): View[] {
  const { reasons, by_day: byDay } = report.tables;
  return [
    { title: "Flagged unclear, by reason", table: "reasons",
      config: bar(labels(reasons, "reason"), [{ label: "flags", data: column(reasons, "count") }]) },
    { title: "Flags per day", table: "by_day", config: line(labels(byDay, "day"), [{ label: "flags", data: column(byDay, "flagged") }]) },
  ];
}

function queue(report: Report): View[] {
  const { burn_down: burnDown, forecast } = report.tables;
  const days = [...labels(burnDown, "day"), ...labels(forecast, "date")];
  const pad = (values: Array<number | null>, before: number) => [...Array(before).fill(null), ...values];
  const config: ChartConfiguration = {
    type: "line",
    data: {
      labels: days,
      datasets: [
        { label: "remaining", data: column(burnDown, "remaining"), borderColor: COLORS[0], pointRadius: 0 },
        { label: "forecast (80% band)", data: pad(column(forecast, "remaining_high"), burnDown.length),
          borderColor: "transparent", backgroundColor: "rgba(36, 87, 214, 0.15)", fill: "+1", pointRadius: 0 },
        { label: "forecast low", data: pad(column(forecast, "remaining_low"), burnDown.length),
          borderColor: "transparent", pointRadius: 0 },
        { label: "forecast", data: pad(column(forecast, "remaining"), burnDown.length), borderColor: COLORS[0],
          borderDash: [6, 4], pointRadius: 0 },
      ],
    },
    options: { responsive: true, plugins: { legend: { labels: { filter: (item) => item.text !== "forecast low" } } },
               scales: { y: { beginAtZero: true, title: { display: true, text: "images left" } } } },
  };
  return [
    { title: "Burn-down and forecast", table: "burn_down", config },
    { title: "Labels per day", table: "burn_down",
      config: bar(labels(burnDown, "day"), [{ label: "labeled", data: column(burnDown, "labeled") },
                                            { label: "imported", data: column(burnDown, "imported") }], true) },
  ];
}

/** The class tree's level the accuracy report reads classes at ("": as trained). */
function levelChoice(body: HTMLElement, projectId: string, levels: number, current: string): HTMLElement {
  const select = el("select", { id: "report-level", "aria-label": "class level" }, el("option", { value: "" }, "classes as trained"),
    ...Array.from({ length: levels }, (_, depth) => el("option", { value: String(depth) }, depth === 0 ? "level 0 (top classes)" : `level ${depth}`)));
  select.value = current;
  select.addEventListener("change", () => {
    body.dataset.level = select.value;
    void show(body, projectId, "accuracy");
  });
  return el("label", { class: "row" }, "Count each class as its ancestor at ", select);
}

const VIEWS: Record<string, (report: Report) => View[]> = {
  "learning-curve": learningCurve,
  accuracy,
  "prelabel-quality": prelabelQuality,
  team,
  agreement,
  flags,
  queue,
};

async function show(body: HTMLElement, projectId: string, name: string): Promise<void> {
  const views = VIEWS[name];
  if (!views) return;
  charts.splice(0).forEach((chart) => chart.destroy());
  body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    const level = name === "accuracy" ? body.dataset.level ?? "" : "";
    const report = await call<Report>("GET", reportUrl(projectId, name) + (level ? `?level=${level}` : ""));
    if (body.dataset.report !== name) return; // another report was chosen meanwhile
    body.replaceChildren();
    if (name === "accuracy" && num(report.levels) !== null && Number(report.levels) > 1) {
      body.append(levelChoice(body, projectId, Number(report.levels), level));
    }
    if (report.sentence) body.append(el("p", { class: "report-sentence" }, report.sentence));
    for (const view of views(report)) body.append(section(projectId, name, view));
  } catch (error) {
    body.replaceChildren(el("p", { class: "error" }, `Could not load the ${name} report: ${(error as Error).message}`));
  }
}

const root = document.getElementById("reports");
const body = document.getElementById("report-body");
if (root && body) {
  const projectId = root.dataset.projectId ?? "";
  new MutationObserver(() => void show(body, projectId, body.dataset.report ?? "")).observe(body, {
    attributes: true,
    attributeFilter: ["data-report"],
  });
  if (body.dataset.report) void show(body, projectId, body.dataset.report);
}
