/** Upload images (files or a .zip); shows the per-file report or follows the import job. */
import { byId, el, request, toast } from "../lib/api";

interface FileResult {
  name?: string;
  file?: string;
  status?: string;
  detail?: string;
  error?: string;
}

const root = byId("upload");
const projectId = root.dataset.projectId;
const form = byId<HTMLFormElement>("upload-form");
const report = byId("upload-report");

function describe(result: FileResult): string {
  const name = result.name ?? result.file ?? "file";
  const outcome = result.status ?? (result.error ? "failed" : "ok");
  const why = result.detail ?? result.error ?? "";
  return `${name}: ${outcome}${why ? ` (${why})` : ""}`;
}

function showResults(data: Record<string, unknown> | null): void {
  const results = (data?.results ?? data?.files ?? []) as FileResult[];
  report.replaceChildren(...results.map((r) => el("li", {}, describe(r))));
  if (results.length === 0) report.replaceChildren(el("li", {}, JSON.stringify(data)));
}

async function follow(jobId: number): Promise<void> {
  const response = await request<Record<string, unknown>>("GET", `/api/import-jobs/${jobId}/`);
  const job = response.data ?? {};
  report.replaceChildren(el("li", {}, `Import job ${jobId}: ${job.status} (${job.processed ?? 0}/${job.total ?? "?"})`));
  if (job.status === "queued" || job.status === "running") setTimeout(() => void follow(jobId), 1500);
  else if (job.report) showResults(job.report as Record<string, unknown>);
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
    else if (response.status >= 400) toast(String(response.data?.detail ?? `HTTP ${response.status}`), "error");
    else showResults(response.data);
  } catch (error) {
    toast(`Upload failed: ${(error as Error).message}`, "error");
  }
});
