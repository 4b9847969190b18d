/** The settings page's privacy blurring panel (admins): its settings, a run over every image
 * and the log of originals opened. */
import { ApiError, byId, call, el, toast } from "../lib/api";

interface BlurRun {
  id: number;
  status: string;
  progress: number;
  message: string;
  error: string;
}

interface Access {
  image: number | null;
  image_name: string;
  username: string;
  accessed_at: string;
}

const ACTIVE = new Set(["queued", "running"]);

export function setUpPrivacy(projectId: string): void {
  const form = byId<HTMLFormElement>("privacy-form");
  const errors = byId("privacy-errors");
  const runState = byId("blur-run-state");
  const accesses = byId("original-accesses");
  const url = `/api/projects/${projectId}/privacy/`;
  const fields = () => form.querySelectorAll<HTMLInputElement | HTMLSelectElement>("[name]");

  async function load(): Promise<void> {
    const saved = await call<Record<string, unknown>>("GET", url);
    for (const input of fields()) {
      const value = saved[input.name];
      if (input instanceof HTMLInputElement && input.type === "checkbox") input.checked = Boolean(value);
      else input.value = Array.isArray(value) ? value.join(", ") : String(value ?? "");
    }
  }

  function values(): Record<string, unknown> {
    const body: Record<string, unknown> = {};
    for (const input of fields()) {
      if (input instanceof HTMLInputElement && input.type === "checkbox") body[input.name] = input.checked;
      else if (input.name === "detector_classes") body[input.name] = input.value.split(",").map((n) => n.trim()).filter(Boolean);
      else body[input.name] = input instanceof HTMLInputElement && input.type === "number" ? Number(input.value) : input.value;
    }
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("PATCH", url, values());
      errors.hidden = true;
      toast("Privacy settings saved; run the blur to apply them to the images already here.");
    } catch (error) {
      errors.textContent = (error as Error).message;
      errors.hidden = false;
    }
  });

  async function watch(run: BlurRun): Promise<void> {
    runState.textContent = `Run ${run.id}: ${run.status} ${Math.round(run.progress * 100)}% ${run.message}${run.error ? ` (${run.error})` : ""}`;
    if (ACTIVE.has(run.status)) setTimeout(() => void call<BlurRun>("GET", `/api/blur-runs/${run.id}/`).then(watch), 2000);
  }

  byId("blur-run").addEventListener("click", async () => {
    try {
      const redetect = byId<HTMLInputElement>("blur-redetect").checked;
      await watch(await call<BlurRun>("POST", `${url}blur-runs/`, { redetect }));
    } catch (error) {
      const running = error instanceof ApiError && error.status === 409;
      toast(running ? `${(error as Error).message} Wait for it to finish.` : (error as Error).message, "error");
    }
  });

  async function loadAccesses(): Promise<void> {
    const rows = (await call<{ results: Access[] }>("GET", `${url}original-accesses/?limit=500`)).results;
    accesses.replaceChildren(...(rows.length ? rows.map((row) => el("tr", {},
      el("td", {}, new Date(row.accessed_at).toLocaleString()), el("td", {}, row.username),
      el("td", {}, row.image === null ? `${row.image_name} (deleted)` : row.image_name))) : [
      el("tr", {}, el("td", { colspan: "3", class: "muted" }, "No original opened yet."))]));
  }

  void load().catch((error: Error) => toast(error.message, "error"));
  void loadAccesses().catch((error: Error) => toast(error.message, "error"));
  void call<{ results: BlurRun[] }>("GET", `${url}blur-runs/?limit=1`).then(({ results }) => {
    if (results.length) void watch(results[0]);
  });
}
