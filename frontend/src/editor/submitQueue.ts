/**
 * Submits that survive a dropped connection: each is persisted (localStorage) with the
 * idempotency key made when the person pressed submit, and retried with that same key
 * until the server answers. The server returns the first result for a replayed key, so a
 * retry after a lost response cannot create a second annotation.
 */
import { errorText } from "../lib/api";

export interface PendingSubmit {
  key: string;
  taskId: number;
  body: Record<string, unknown>;
  queuedAt: number;
  attempts: number;
}

export interface SendResult {
  status: number;
  data: Record<string, unknown> | null;
}

export type Outcome =
  | { kind: "saved"; item: PendingSubmit; data: Record<string, unknown> | null }
  | { kind: "extra_opinion"; item: PendingSubmit; detail: string }
  | { kind: "rejected"; item: PendingSubmit; status: number; detail: string };

export type QueueState = "saved" | "saving" | "offline";

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export type Sender = (item: PendingSubmit) => Promise<SendResult>;

const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15000];

export class SubmitQueue {
  private items: PendingSubmit[];
  private running = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastFailed = false;
  private listeners: Array<() => void> = [];

  constructor(
    private readonly storage: StorageLike,
    private readonly storageKey: string,
    private readonly send: Sender,
    private readonly onOutcome: (outcome: Outcome) => void,
    private readonly schedule: (fn: () => void, ms: number) => ReturnType<typeof setTimeout> = (fn, ms) => setTimeout(fn, ms),
  ) {
    this.items = SubmitQueue.load(storage, storageKey);
  }

  static load(storage: StorageLike, storageKey: string): PendingSubmit[] {
    try {
      const parsed = JSON.parse(storage.getItem(storageKey) ?? "[]");
      return Array.isArray(parsed) ? parsed : [];
    } catch {
      return [];
    }
  }

  get pending(): readonly PendingSubmit[] {
    return this.items;
  }

  get state(): QueueState {
    if (this.items.length === 0) return "saved";
    return this.lastFailed ? "offline" : "saving";
  }

  /** Task ids whose submit has not reached the server yet (the lease is still ours). */
  pendingTaskIds(): number[] {
    return this.items.map((item) => item.taskId);
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  enqueue(taskId: number, body: Record<string, unknown>, key: string): PendingSubmit {
    const item: PendingSubmit = { key, taskId, body, queuedAt: Date.now(), attempts: 0 };
    this.items.push(item);
    this.persist();
    void this.flush();
    return item;
  }

  /** Send everything queued, in order; stop at the first transport failure and retry later. */
  async flush(): Promise<void> {
    if (this.running) return;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.running = true;
    this.changed();
    try {
      while (this.items.length > 0) {
        const item = this.items[0];
        item.attempts += 1;
        this.persist();
        let result: SendResult;
        try {
          result = await this.send(item);
        } catch {
          this.retryLater(item);
          return;
        }
        // Server trouble, throttling or a lapsed session: keep the submit and try again.
        if (result.status >= 500 || [0, 401, 403, 429].includes(result.status)) {
          this.retryLater(item);
          return;
        }
        this.lastFailed = false;
        this.items.shift();
        this.persist();
        this.onOutcome(this.outcomeOf(item, result));
      }
    } finally {
      this.running = false;
      this.changed();
    }
  }

  private outcomeOf(item: PendingSubmit, result: SendResult): Outcome {
    if (result.status === 200 || result.status === 201) return { kind: "saved", item, data: result.data };
    if (result.status === 409 && result.data?.state === "extra_opinion") {
      return { kind: "extra_opinion", item, detail: errorText(result.data) };
    }
    return { kind: "rejected", item, status: result.status, detail: errorText(result.data) };
  }

  private retryLater(item: PendingSubmit): void {
    this.lastFailed = true;
    const delay = RETRY_DELAYS_MS[Math.min(item.attempts - 1, RETRY_DELAYS_MS.length - 1)];
    this.timer = this.schedule(() => {
      this.timer = null;
      void this.flush();
    }, delay);
  }

  private persist(): void {
    this.storage.setItem(this.storageKey, JSON.stringify(this.items));
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}
