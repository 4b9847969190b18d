/** A thumbnail grid's selection, without the DOM: every item starts selected (the grid
 * verifies a proposal, so a person removes the misfits); a focus moves with the arrow keys
 * over `columns` per row; Space toggles the focused item, A toggles all, Enter submits. */

export type GridAction = "left" | "right" | "up" | "down" | "toggle" | "all" | "submit";

const KEYS: Record<string, GridAction> = {
  ArrowLeft: "left", ArrowRight: "right", ArrowUp: "up", ArrowDown: "down",
  " ": "toggle", x: "toggle", a: "all", Enter: "submit",
};

/** The grid action of a key press; null for keys the grid leaves alone (with a modifier too). */
export function gridAction(event: { key: string; ctrlKey?: boolean; metaKey?: boolean; altKey?: boolean }): GridAction | null {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  return KEYS[event.key] ?? KEYS[event.key.toLowerCase()] ?? null;
}

export class GridSelection<T extends { id: number }> {
  focus = 0;
  private readonly off = new Set<number>();

  constructor(readonly items: T[], public columns = 1) {}

  isSelected(id: number): boolean {
    return !this.off.has(id);
  }

  toggle(id: number = this.items[this.focus]?.id): void {
    if (id === undefined) return;
    if (this.off.has(id)) this.off.delete(id);
    else this.off.add(id);
  }

  /** All off when all are on, else all on. */
  toggleAll(): void {
    const allOn = this.items.every((item) => !this.off.has(item.id));
    this.off.clear();
    if (allOn) for (const item of this.items) this.off.add(item.id);
  }

  /** Moves the focus; stays inside the grid (no wrap past either end). */
  move(action: "left" | "right" | "up" | "down"): void {
    const step = { left: -1, right: 1, up: -this.columns, down: this.columns }[action];
    const next = this.focus + step;
    if (next >= 0 && next < this.items.length) this.focus = next;
  }

  /** Applies a grid action; true for "submit", which the page carries out. */
  apply(action: GridAction): boolean {
    if (action === "toggle") this.toggle();
    else if (action === "all") this.toggleAll();
    else if (action === "submit") return true;
    else this.move(action);
    return false;
  }

  selected(): T[] {
    return this.items.filter((item) => !this.off.has(item.id));
  }

  deselected(): T[] {
    return this.items.filter((item) => this.off.has(item.id));
  }
}

/** The class a grid of proposals shows first: the one most of them propose (ties: the
 * class seen first), with those items; null when nothing proposes a class. */
export function largestGroup<T>(items: T[], classOf: (item: T) => number | null): { classId: number; items: T[] } | null {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const classId = classOf(item);
    if (classId === null) continue;
    groups.set(classId, [...(groups.get(classId) ?? []), item]);
  }
  let best: { classId: number; items: T[] } | null = null;
  for (const [classId, members] of groups) if (!best || members.length > best.items.length) best = { classId, items: members };
  return best;
}
