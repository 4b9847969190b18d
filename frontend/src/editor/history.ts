/** Undo/redo over immutable snapshots of the editor's labels. */
export class History<T> {
  private past: T[] = [];
  private future: T[] = [];

  constructor(private present: T, private readonly limit = 200) {}

  get current(): T {
    return this.present;
  }

  /** Record a new state; a fresh edit drops the redo branch. */
  push(next: T): void {
    this.past.push(this.present);
    if (this.past.length > this.limit) this.past.shift();
    this.present = next;
    this.future = [];
  }

  /** Replace the present without a history entry (the live frames of a drag). */
  replace(next: T): void {
    this.present = next;
  }

  undo(): T | null {
    const previous = this.past.pop();
    if (previous === undefined) return null;
    this.future.push(this.present);
    this.present = previous;
    return previous;
  }

  redo(): T | null {
    const next = this.future.pop();
    if (next === undefined) return null;
    this.past.push(this.present);
    this.present = next;
    return next;
  }

  reset(state: T): void {
    this.past = [];
    this.future = [];
    this.present = state;
  }
}
