/** Export the project's labels: start an export job in the chosen format, follow its
 * progress and offer the zip for download. */
import { byId, call, el, errorText, request, toast } from "../lib/api";

interface ExportJob {
  id: number;
  status: string;
  progress: number;
  message: string;
  error: string;
  download_url: string | null;
}

const root = byId("export");
const projectId = root.dataset.projectId;
const form = byId<HTMLFormElement>("export-form");
const progress = byId<HTMLProgressElement>("export-progress");
const statusLine = byId("export-status");
const download = byId<HTMLAnchorElement>("export-download");
const POLL_MS = 1000;

function show(job: ExportJob): void {
  progress.hidden = false;
  progress.value = job.progress;
  statusLine.replaceChildren(el("span", {}, `Export ${job.id}: ${job.status}${job.message ? `, ${job.message}` : ""}`));
  if (job.status === "failed") statusLine.append(el("span", { class: "error" }, ` (${job.error})`));
  if (job.download_url) {
    download.href = job.download_url;
    download.hidden = false;
  }
}

async function follow(jobId: number): Promise<void> {
  let job: ExportJob;
  try {
    job = await call<ExportJob>("GET", `/api/export-jobs/${jobId}/`);
  } catch (error) {
    toast(`Could not follow export ${jobId}: ${(error as Error).message}`, "error");
    return;
  }
  show(job);
  if (job.status === "queued" || job.status === "running") setTimeout(() => void follow(jobId), POLL_MS);
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  download.hidden = true;
  const format = byId<HTMLSelectElement>("export-format").value;
  download.download = `project-${projectId}-${format}.zip`;
  const originals = document.querySelector<HTMLInputElement>("#export-originals")?.checked ? "&originals=1" : "";
  const response = await request<{ job_id?: number; detail?: string }>(
    "GET", `/api/projects/${projectId}/export/?format=${encodeURIComponent(format)}&async=1${originals}`);
  // 409: the same export is under way already; 503: queued while the broker is away. Follow it.
  const jobId = response.data?.job_id;
  if ((response.status === 202 || response.status === 409 || response.status === 503) && jobId) await follow(jobId);
  else toast(errorText(response.data) || `Export failed with HTTP ${response.status}`, "error");
});
