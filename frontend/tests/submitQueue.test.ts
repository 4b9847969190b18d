import { describe, expect, it } from "vitest";
import { type Outcome, type PendingSubmit, type SendResult, SubmitQueue } from "../src/editor/submitQueue";

class MemoryStorage {
  data = new Map<string, string>();
  getItem(key: string) {
    return this.data.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.data.set(key, value);
  }
}

function manualScheduler() {
  const jobs: Array<() => void> = [];
  const schedule = (fn: () => void) => {
    jobs.push(fn);
    return 0 as unknown as ReturnType<typeof setTimeout>;
  };
  return { jobs, schedule };
}

describe("SubmitQueue", () => {
  it("retries a failed submit with the same idempotency key until it lands", async () => {
    const storage = new MemoryStorage();
    const sentKeys: string[] = [];
    let online = false;
    const send = async (item: PendingSubmit): Promise<SendResult> => {
      sentKeys.push(item.key);
      if (!online) throw new TypeError("Failed to fetch");
      return { status: 201, data: { id: 9 } };
    };
    const outcomes: Outcome[] = [];
    const { jobs, schedule } = manualScheduler();
    const queue = new SubmitQueue(storage, "q", send, (o) => outcomes.push(o), schedule);

    queue.enqueue(5, { kind: "accept" }, "key-1");
    await Promise.resolve();
    await new Promise((r) => setTimeout(r, 0));
    expect(queue.state).toBe("offline");
    expect(queue.pendingTaskIds()).toEqual([5]);

    online = true;
    jobs.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(sentKeys).toEqual(["key-1", "key-1"]);
    expect(queue.state).toBe("saved");
    expect(outcomes.map((o) => o.kind)).toEqual(["saved"]);
  });

  it("keeps queued submits across page loads", async () => {
    const storage = new MemoryStorage();
    const never = () => new Promise<SendResult>(() => {});
    const first = new SubmitQueue(storage, "q", never, () => {});
    first.enqueue(1, { kind: "skip" }, "k1");
    const second = new SubmitQueue(storage, "q", never, () => {});
    expect(second.pending.map((i) => [i.taskId, i.key])).toEqual([[1, "k1"]]);
  });

  it("reports a task taken by someone else as an extra opinion and moves on", async () => {
    const storage = new MemoryStorage();
    const responses: SendResult[] = [
      { status: 409, data: { detail: "taken", state: "extra_opinion", annotation_id: 3 } },
      { status: 201, data: {} },
    ];
    const outcomes: Outcome[] = [];
    const queue = new SubmitQueue(storage, "q", async () => responses.shift()!, (o) => outcomes.push(o));
    queue.enqueue(1, {}, "a");
    queue.enqueue(2, {}, "b");
    await new Promise((r) => setTimeout(r, 0));
    expect(outcomes.map((o) => o.kind)).toEqual(["extra_opinion", "saved"]);
    expect(queue.pending).toHaveLength(0);
  });

  it("keeps a submit when the server fails or the session lapsed", async () => {
    for (const status of [500, 503, 403]) {
      const storage = new MemoryStorage();
      const { schedule } = manualScheduler();
      const queue = new SubmitQueue(storage, "q", async () => ({ status, data: null }), () => {}, schedule);
      queue.enqueue(1, {}, "k");
      await new Promise((r) => setTimeout(r, 0));
      expect(queue.pending).toHaveLength(1);
      expect(SubmitQueue.load(storage, "q")[0].key).toBe("k");
    }
  });

  it("reports an invalid submit instead of retrying it forever", async () => {
    const outcomes: Outcome[] = [];
    const queue = new SubmitQueue(
      new MemoryStorage(),
      "q",
      async () => ({ status: 400, data: { detail: "boxes[0]: no area" } }),
      (o) => outcomes.push(o),
    );
    queue.enqueue(1, {}, "k");
    await new Promise((r) => setTimeout(r, 0));
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ kind: "rejected", status: 400, detail: "boxes[0]: no area" });
  });

  it("reports a submit refused with field errors by its fields", async () => {
    const outcomes: Outcome[] = [];
    const queue = new SubmitQueue(
      new MemoryStorage(),
      "q",
      async () => ({ status: 400, data: { time_spent_ms: ["A valid integer is required."] } }),
      (o) => outcomes.push(o),
    );
    queue.enqueue(1, {}, "k");
    await new Promise((r) => setTimeout(r, 0));
    expect(outcomes[0]).toMatchObject({ kind: "rejected", status: 400, detail: "time_spent_ms: A valid integer is required." });
  });
});
