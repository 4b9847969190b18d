/** Upload images (files or a .zip); shows the per-file report or follows the import job. */
import { byId, call, el, errorText, request, toast } from "../lib/api";

interface ItemResult {
  name: string;
  status: "created" | "duplicate" | "error" | string;
  image_id?: number;
  error?: string;
}

interface ImportReport {
  images?: { created: number; duplicate: number; error: number };
  labels?: { format: string; created: number; error: number } | null;
  items?: ItemResult[];
}

const root = byId("upload");
const projectId = root.dataset.projectId;
const form = byId<HTMLFormElement>("upload-form");
const report = byId("upload-report");

function showReport(data: ImportReport | null): void {
  const images = data?.images;
  const summary = images
    ? `${images.created} new, ${images.duplicate} already here, ${images.error} failed` +
      (data?.labels ? `; labels (${data.labels.format}): ${data.labels.created} read, ${data.labels.error} failed` : "")
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
  const body = new FormData();
  for (const file of Array.from(files)) body.append("files", file);
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
