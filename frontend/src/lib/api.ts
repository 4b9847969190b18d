/** Same-origin JSON calls with Django's session auth and CSRF token. */

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  data: T | null;
}

export class ApiError extends Error {
  constructor(public readonly status: number, message: string, public readonly data: unknown = null) {
    super(message);
  }
}

export function csrfToken(): string {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function request<T = Record<string, unknown>>(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  init: RequestInit = {},
): Promise<ApiResponse<T>> {
  const all: Record<string, string> = { Accept: "application/json", ...headers };
  if (method !== "GET" && method !== "HEAD") all["X-CSRFToken"] = csrfToken();
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    all["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(url, { method, headers: all, body: payload, credentials: "same-origin", ...init });
  const text = await response.text();
  let data: T | null = null;
  if (text) {
    try {
      data = JSON.parse(text) as T;
    } catch {
      data = null;
    }
  }
  return { status: response.status, data };
}

/** What an error answer says: DRF's `detail`, or its field errors as "field: problem; …"; "" if nothing. */
export function errorText(data: unknown): string {
  if (!data || typeof data !== "object") return "";
  const record = data as Record<string, unknown>;
  if (typeof record.detail === "string") return record.detail;
  const said = (problem: unknown): string => (typeof problem === "string" ? problem : JSON.stringify(problem));
  return Object.entries(record)
    .map(([field, problem]) => `${field}: ${Array.isArray(problem) ? problem.map(said).join(" ") : said(problem)}`)
    .join("; ");
}

/** Like request(), but a non-2xx answer throws an ApiError carrying what the server said. */
export async function call<T = Record<string, unknown>>(method: string, url: string, body?: unknown): Promise<T> {
  const response = await request<T>(method, url, body);
  if (response.status < 200 || response.status >= 300) {
    const detail = errorText(response.data);
    throw new ApiError(response.status, detail || `${method} ${url} failed with HTTP ${response.status}`, response.data);
  }
  return response.data as T;
}

/** One page of a list endpoint (limit/offset pagination). */
export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

/** Every item of a paginated list, following `next` until the last page. */
export async function callAll<T>(url: string): Promise<T[]> {
  const items: T[] = [];
  let next: string | null = url;
  while (next) {
    const page: Page<T> = await call<Page<T>>("GET", next);
    items.push(...page.results);
    next = page.next;
  }
  return items;
}

/** A version-4 UUID; crypto.randomUUID needs a secure context, getRandomValues does not. */
export function uuid4(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`page is missing #${id}`);
  return node as T;
}

export function toast(message: string, kind: "info" | "error" = "info"): void {
  let host = document.getElementById("toasts");
  if (!host) {
    host = el("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(host);
  }
  const item = el("div", { class: `toast toast-${kind}` }, message);
  host.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
