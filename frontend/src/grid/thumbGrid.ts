/** A thumbnail grid on the page: renders a GridSelection, toggles on click, and takes the
 * grid keys while it has the focus. Shared by the cluster page and the annotators' grid. */
import { el } from "../lib/api";
import "../styles/taxonomy.css";
import { GridSelection, gridAction } from "./selection";

export interface Thumb {
  id: number;
  url: string;
  title: string;
  score?: string;
}

export class ThumbGrid<T extends Thumb> {
  readonly selection: GridSelection<T>;
  private readonly cells = new Map<number, HTMLButtonElement>();
  private readonly failed = new Set<number>();
  private painted = 0;

  constructor(host: HTMLElement, items: T[], private readonly onSubmit: () => void,
              private readonly onChange: (selection: GridSelection<T>) => void = () => {}) {
    this.selection = new GridSelection(items);
    host.replaceChildren(...items.map((item) => this.cell(item)));
    host.onkeydown = (e) => this.key(e);
    this.render();
  }

  /** Every thumbnail has been decoded and shown (or failed and was deselected): nothing
   * is submitted unseen. */
  allSeen(): boolean {
    return this.painted + this.failed.size >= this.selection.items.length;
  }

  render(): void {
    this.selection.items.forEach((item, index) => {
      const cell = this.cells.get(item.id)!;
      const on = this.selection.isSelected(item.id);
      cell.classList.toggle("deselected", !on);
      cell.classList.toggle("focused", index === this.selection.focus);
      cell.setAttribute("aria-pressed", String(on));
      cell.querySelector(".thumb-mark")!.textContent = on ? "✓" : "✕";
    });
    this.onChange(this.selection);
  }

  private cell(item: T): HTMLButtonElement {
    const image = el("img", { src: item.url, alt: item.title, loading: "eager", draggable: "false" });
    image.addEventListener("load", () => { this.painted += 1; });
    image.addEventListener("error", () => {
      // An image nobody could see is never labeled.
      this.failed.add(item.id);
      if (this.selection.isSelected(item.id)) this.selection.toggle(item.id);
      this.render();
    });
    const cell = el("button", { type: "button", class: "thumb-cell", title: item.title, "data-id": String(item.id), tabindex: "-1" },
      image, el("span", { class: "thumb-mark", "aria-hidden": "true" }),
      ...(item.score ? [el("span", { class: "thumb-score" }, item.score)] : []));
    cell.addEventListener("click", () => {
      if (this.failed.has(item.id)) return;
      this.selection.focus = this.selection.items.indexOf(item);
      this.selection.toggle(item.id);
      this.render();
    });
    this.cells.set(item.id, cell);
    return cell;
  }

  private columns(): number {
    const tops = [...this.cells.values()].map((cell) => cell.offsetTop);
    const perRow = tops.filter((top) => top === tops[0]).length;
    return Math.max(1, perRow);
  }

  private key(e: KeyboardEvent): void {
    const action = gridAction(e);
    if (!action || e.repeat) return;
    e.preventDefault();
    this.selection.columns = this.columns();
    const focused = this.selection.items[this.selection.focus];
    if (action === "toggle" && focused && this.failed.has(focused.id)) return;
    if (this.selection.apply(action)) {
      this.onSubmit();
      return;
    }
    for (const id of this.failed) if (this.selection.isSelected(id)) this.selection.toggle(id);
    this.render();
  }
}
