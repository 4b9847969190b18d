/** Import images (files or a .zip) with the labels made elsewhere; shows the per-file report
 * or follows the import job with a progress bar. */
import { byId, call, el, errorText, request, toast } from "../lib/api";
import { parseClassMap } from "../lib/classMap";

interface ItemResult {
  name: string;
  status: "created" | "duplicate" | "error" | string;
  image_id?: number;
  error?: string;
}

interface ImportReport {
  images?: { created: number; duplicate: number; error: number };
  labels?: { format: string; created: number; unchanged?: number; kept_as_opinion?: number; error: number } | null;
  items?: ItemResult[];
}

const root = byId("upload");
const projectId = root.dataset.projectId;
const form = byId<HTMLFormElement>("upload-form");
const report = byId("upload-report");
const progress = byId<HTMLProgressElement>("upload-progress");

function labelSummary(labels: NonNullable<ImportReport["labels"]>): string {
  const kept = labels.kept_as_opinion ? `, ${labels.kept_as_opinion} kept beside a person's label` : "";
  return `; labels (${labels.format}): ${labels.created} read${kept}, ${labels.error} failed`;
}

function showReport(data: ImportReport | null): void {
  const images = data?.images;
  const summary = images
    ? `${images.created} new, ${images.duplicate} already here, ${images.error} failed` +
      (data?.labels ? labelSummary(data.labels) : "")
    : "No report.";
  report.replaceChildren(
    el("li", {}, el("strong", {}, summary)),
    ...(data?.items ?? [])
      .filter((item) => item.status !== "created")
      .map((item) => el("li", { class: item.status === "error" ? "error" : "muted" },
        `${item.name}: ${item.status}${item.error ? ` (${item.error})` : ""}`)),
  );
}

interface ImportJob {
  status: string;
  processed?: number;
  total?: number;
  report?: ImportReport | null;
}

async function follow(jobId: number): Promise<void> {
  let job: ImportJob;
  try {
    job = await call<ImportJob>("GET", `/api/import-jobs/${jobId}/`);
  } catch (error) {
    toast(`Could not follow import job ${jobId}: ${(error as Error).message}`, "error");
    return;
  }
  report.replaceChildren(el("li", {}, `Import job ${jobId}: ${job.status} (${job.processed ?? 0}/${job.total ?? "?"})`));
  progress.hidden = false;
  progress.value = job.total ? (job.processed ?? 0) / job.total : 0;
  if (job.status === "queued" || job.status === "running") setTimeout(() => void follow(jobId), 1500);
  else if (job.report) showReport(job.report);
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const files = byId<HTMLInputElement>("upload-files").files;
  if (!files || files.length === 0) {
    toast("Choose images or a .zip first.", "error");
    return;
  }
  let classMap: Record<string, string>;
  try {
    classMap = parseClassMap(byId<HTMLTextAreaElement>("upload-class-map").value);
  } catch (error) {
    toast((error as Error).message, "error");
    return;
  }
  const body = new FormData();
  for (const file of Array.from(files)) body.append("files", file);
  const labelFormat = byId<HTMLSelectElement>("upload-format").value;
  if (labelFormat) {
    body.append("label_format", labelFormat);
    body.append("class_map", JSON.stringify(classMap));
    body.append("create_classes", String(byId<HTMLInputElement>("upload-create-classes").checked));
    body.append("replace", String(byId<HTMLInputElement>("upload-replace").checked));
  }
  report.replaceChildren(el("li", {}, `Uploading ${files.length} file(s)…`));
  try {
    const response = await request<Record<string, unknown>>("POST", `/api/projects/${projectId}/images/`, body);
    if (response.status === 202 && response.data?.job_id) await follow(Number(response.data.job_id));
    else if (response.status >= 400) toast(errorText(response.data) || `HTTP ${response.status}`, "error");
    else showReport(response.data as ImportReport);
  } catch (error) {
    toast(`Upload failed: ${(error as Error).message}`, "error");
  }
});
