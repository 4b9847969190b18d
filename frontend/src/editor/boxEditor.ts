/**
 * The image stage: shows the image and its boxes (SVG over an <img>), and turns pointer
 * gestures into edits — drag on empty image draws, drag a box moves it, drag a handle of
 * the selected box resizes it, wheel zooms at the cursor, Space+drag or middle/right drag
 * pans. Labels are kept in original-image pixels; only rendering uses the view.
 */
import {
  type Box,
  type Handle,
  HANDLES,
  type Point,
  boxFromCorners,
  boxIndexAt,
  fitView,
  handleAt,
  handlePoint,
  hasArea,
  moveBox,
  needsFullResolution,
  panBy,
  resizeBox,
  roundBox,
  toDisplay,
  toImage,
  type View,
  zoomAt,
} from "./geometry";
import { History } from "./history";

export interface EditorBox extends Box {
  label: number;
  /** The model's confidence while the box is still the model's, else null. */
  score: number | null;
  fromModel: boolean;
  /** A region not to learn from (COCO iscrowd): drawn greyed, kept as it is. */
  ignore?: boolean;
  /** Pascal VOC's difficult flag, kept through an edit. */
  difficult?: boolean;
}

const IGNORE_COLOR = "#9e9e9e";

/** A box as the payload stores it: coordinates, class and the flags that are set. */
export function payloadBox(box: EditorBox): { x1: number; y1: number; x2: number; y2: number; label: number; ignore?: true; difficult?: true } {
  const { x1, y1, x2, y2, label } = box;
  return { x1, y1, x2, y2, label, ...(box.ignore ? { ignore: true } : {}), ...(box.difficult ? { difficult: true } : {}) };
}

export interface Labels {
  boxes: EditorBox[];
  tags: number[];
}

export interface ClassStyle {
  name(label: number): string;
  color(label: number): string;
}

type Gesture =
  | { kind: "draw"; start: Point; label: number }
  | { kind: "move"; index: number; start: Point; origin: EditorBox }
  | { kind: "resize"; index: number; handle: Handle; origin: EditorBox }
  | { kind: "pan"; last: Point };

const SVG_NS = "http://www.w3.org/2000/svg";
const HANDLE_RADIUS_PX = 8;

export class BoxEditor {
  readonly history = new History<Labels>({ boxes: [], tags: [] });
  view: View = { scale: 1, tx: 0, ty: 0 };
  selected = -1;
  drawLabel = 0;
  showModel = true;
  detection = true;

  private image: HTMLImageElement | null = null;
  private width = 1;
  private height = 1;
  private displayWidth = 1;
  private fullUrl = "";
  private fullRequested = false;
  private draft: Labels | null = null;
  private gesture: Gesture | null = null;
  private spaceHeld = false;
  private readonly overlay: SVGSVGElement;

  constructor(
    private readonly stage: HTMLElement,
    private readonly style: ClassStyle,
    private readonly onChange: () => void,
  ) {
    this.overlay = document.createElementNS(SVG_NS, "svg");
    this.overlay.classList.add("stage-overlay");
    this.overlay.setAttribute("data-testid", "overlay");
    stage.append(this.overlay);
    this.overlay.addEventListener("pointerdown", (e) => this.pointerDown(e));
    this.overlay.addEventListener("pointermove", (e) => this.pointerMove(e));
    this.overlay.addEventListener("pointerup", (e) => this.pointerUp(e));
    this.overlay.addEventListener("pointercancel", (e) => this.pointerUp(e));
    this.overlay.addEventListener("contextmenu", (e) => e.preventDefault());
    stage.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    window.addEventListener("keydown", (e) => {
      if (e.code === "Space" && !isTyping(e)) {
        this.spaceHeld = true;
        e.preventDefault();
      }
    });
    window.addEventListener("keyup", (e) => {
      if (e.code === "Space") this.spaceHeld = false;
    });
    new ResizeObserver(() => this.fit()).observe(stage);
  }

  get labels(): Labels {
    return this.draft ?? this.history.current;
  }

  /** Show a new image (already decoded) with its starting labels; resets history and view. */
  load(image: HTMLImageElement, width: number, height: number, fullUrl: string, labels: Labels, detection: boolean): void {
    this.image?.remove();
    this.image = image;
    image.classList.add("stage-image");
    image.draggable = false;
    image.alt = "";
    this.stage.insertBefore(image, this.overlay);
    this.width = width;
    this.height = height;
    this.displayWidth = image.naturalWidth || width;
    this.fullUrl = fullUrl;
    this.fullRequested = this.displayWidth >= width;
    this.detection = detection;
    this.history.reset(labels);
    this.draft = null;
    this.gesture = null;
    this.selected = -1;
    this.fit();
  }

  fit(): void {
    const rect = this.stage.getBoundingClientRect();
    this.view = fitView(this.width, this.height, rect.width, rect.height);
    this.render();
  }

  commit(next: Labels): void {
    this.history.push(next);
    this.draft = null;
    this.render();
    this.onChange();
  }

  undo(): void {
    if (this.history.undo()) this.afterHistoryMove();
  }

  redo(): void {
    if (this.history.redo()) this.afterHistoryMove();
  }

  setLabelOfSelected(label: number): boolean {
    const current = this.history.current;
    if (this.selected < 0 || this.selected >= current.boxes.length) return false;
    const boxes = current.boxes.map((box, i) =>
      i === this.selected ? { ...box, label, score: null, fromModel: false } : box,
    );
    this.commit({ ...current, boxes });
    return true;
  }

  deleteSelected(): boolean {
    const current = this.history.current;
    if (this.selected < 0 || this.selected >= current.boxes.length) return false;
    this.commit({ ...current, boxes: current.boxes.filter((_, i) => i !== this.selected) });
    this.selected = -1;
    this.render();
    return true;
  }

  select(index: number): void {
    this.selected = index;
    this.render();
    this.onChange();
  }

  /** Tab through the visible boxes. */
  selectNext(step: number): void {
    const visible = this.visibleIndexes();
    if (visible.length === 0) return;
    const at = visible.indexOf(this.selected);
    const next = at < 0 ? (step > 0 ? 0 : visible.length - 1) : (at + step + visible.length) % visible.length;
    this.select(visible[next]);
  }

  toggleModelBoxes(): void {
    this.showModel = !this.showModel;
    if (!this.showModel && this.labels.boxes[this.selected]?.fromModel) this.selected = -1;
    this.render();
    this.onChange();
  }

  zoomBy(factor: number): void {
    const rect = this.stage.getBoundingClientRect();
    this.setView(zoomAt(this.view, factor, { x: rect.width / 2, y: rect.height / 2 }, this.minScale(), 40));
  }

  render(): void {
    const image = this.image;
    if (image) {
      image.style.width = `${this.width * this.view.scale}px`;
      image.style.height = `${this.height * this.view.scale}px`;
      image.style.transform = `translate(${this.view.tx}px, ${this.view.ty}px)`;
    }
    const svg = this.overlay;
    svg.replaceChildren();
    if (!this.detection) return;
    const boxes = this.labels.boxes;
    boxes.forEach((box, index) => {
      if (!this.isVisible(box)) return;
      svg.append(this.boxNode(box, index === this.selected, index));
    });
    const selected = boxes[this.selected];
    if (selected && this.isVisible(selected)) {
      for (const handle of HANDLES) {
        const p = toDisplay(this.view, handlePoint(selected, handle));
        const node = svgNode("rect", {
          x: p.x - 4, y: p.y - 4, width: 8, height: 8, class: `handle handle-${handle}`,
        });
        node.setAttribute("data-handle", handle);
        svg.append(node);
      }
    }
  }

  private boxNode(box: EditorBox, selected: boolean, index: number): SVGGElement {
    const a = toDisplay(this.view, { x: box.x1, y: box.y1 });
    const b = toDisplay(this.view, { x: box.x2, y: box.y2 });
    const color = box.ignore ? IGNORE_COLOR : this.style.color(box.label);
    const group = svgNode("g", {
      class: `box${selected ? " selected" : ""}${box.fromModel ? " model" : ""}${box.ignore ? " ignore" : ""}`,
    });
    group.setAttribute("data-box-index", String(index));
    group.setAttribute("data-label", String(box.label));
    group.append(
      svgNode("rect", {
        x: a.x, y: a.y, width: Math.max(0, b.x - a.x), height: Math.max(0, b.y - a.y),
        stroke: color, fill: color, class: "box-rect",
      }),
    );
    const name = box.ignore ? `${this.style.name(box.label)} (ignored)` : this.style.name(box.label);
    const caption = box.score === null ? name : `${name} ${box.score.toFixed(2)}`;
    const textY = a.y > 16 ? a.y - 4 : a.y + 13;
    const background = svgNode("rect", {
      x: a.x, y: textY - 12, width: caption.length * 6.6 + 8, height: 15, fill: color, class: "box-caption-bg",
    });
    const text = svgNode("text", { x: a.x + 4, y: textY, class: "box-caption" });
    text.textContent = caption;
    group.append(background, text);
    return group;
  }

  private isVisible(box: EditorBox): boolean {
    return this.showModel || !box.fromModel;
  }

  private visibleIndexes(): number[] {
    return this.labels.boxes.flatMap((box, i) => (this.isVisible(box) ? [i] : []));
  }

  private afterHistoryMove(): void {
    if (this.selected >= this.history.current.boxes.length) this.selected = -1;
    this.render();
    this.onChange();
  }

  private minScale(): number {
    const rect = this.stage.getBoundingClientRect();
    return Math.min(fitView(this.width, this.height, rect.width, rect.height).scale, 1) / 4;
  }

  private setView(view: View): void {
    this.view = view;
    this.render();
    this.maybeLoadFullResolution();
  }

  /** Swap in the original once the view magnifies the display version; boxes are unaffected. */
  private maybeLoadFullResolution(): void {
    if (this.fullRequested || !needsFullResolution(this.view, this.width, this.displayWidth)) return;
    this.fullRequested = true;
    const target = this.image;
    const full = new Image();
    full.src = this.fullUrl;
    full
      .decode()
      .then(() => {
        if (this.image !== target || !target) return;
        target.src = full.src;
        target.dataset.resolution = "full";
      })
      .catch(() => {
        this.fullRequested = false;
      });
  }

  private localPoint(e: PointerEvent | WheelEvent): Point {
    const rect = this.stage.getBoundingClientRect();
    return { x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  private wheel(e: WheelEvent): void {
    e.preventDefault();
    const factor = Math.exp(-e.deltaY * 0.0015);
    this.setView(zoomAt(this.view, factor, this.localPoint(e), this.minScale(), 40));
  }

  private pointerDown(e: PointerEvent): void {
    const p = this.localPoint(e);
    this.overlay.setPointerCapture(e.pointerId);
    if (this.spaceHeld || e.button === 1 || e.button === 2) {
      this.gesture = { kind: "pan", last: p };
      return;
    }
    if (e.button !== 0 || !this.detection) return;
    const labels = this.history.current;
    const selected = labels.boxes[this.selected];
    if (selected && this.isVisible(selected)) {
      const handle = handleAt(selected, this.view, p, HANDLE_RADIUS_PX);
      if (handle) {
        this.gesture = { kind: "resize", index: this.selected, handle, origin: selected };
        return;
      }
    }
    const at = toImage(this.view, p);
    const visible = this.visibleIndexes();
    const hit = boxIndexAt(visible.map((i) => labels.boxes[i]), at);
    if (hit >= 0) {
      const index = visible[hit];
      this.select(index);
      this.gesture = { kind: "move", index, start: at, origin: labels.boxes[index] };
      return;
    }
    this.select(-1);
    this.gesture = { kind: "draw", start: at, label: this.drawLabel };
  }

  private pointerMove(e: PointerEvent): void {
    const gesture = this.gesture;
    if (!gesture) return;
    const p = this.localPoint(e);
    if (gesture.kind === "pan") {
      this.setView(panBy(this.view, p.x - gesture.last.x, p.y - gesture.last.y));
      gesture.last = p;
      return;
    }
    const at = toImage(this.view, p);
    const current = this.history.current;
    if (gesture.kind === "draw") {
      const box = boxFromCorners(gesture.start, at, this.width, this.height);
      const drawn: EditorBox = { ...box, label: gesture.label, score: null, fromModel: false };
      this.draft = { ...current, boxes: [...current.boxes, drawn] };
      this.selected = current.boxes.length;
    } else {
      const moved =
        gesture.kind === "move"
          ? moveBox(gesture.origin, at.x - gesture.start.x, at.y - gesture.start.y, this.width, this.height)
          : resizeBox(gesture.origin, gesture.handle, at, this.width, this.height);
      const boxes = current.boxes.map((box, i) =>
        i === gesture.index ? { ...box, ...moved, score: null, fromModel: false } : box,
      );
      this.draft = { ...current, boxes };
    }
    this.render();
  }

  private pointerUp(e: PointerEvent): void {
    if (this.overlay.hasPointerCapture(e.pointerId)) this.overlay.releasePointerCapture(e.pointerId);
    const gesture = this.gesture;
    this.gesture = null;
    const draft = this.draft;
    this.draft = null;
    if (!gesture || gesture.kind === "pan" || !draft) {
      this.render();
      return;
    }
    if (gesture.kind !== "draw") {
      const after = draft.boxes[gesture.index];
      const before = gesture.origin;
      if (after.x1 === before.x1 && after.y1 === before.y1 && after.x2 === before.x2 && after.y2 === before.y2) {
        this.render();
        return;
      }
    } else {
      const drawn = draft.boxes[draft.boxes.length - 1];
      if (!hasArea(drawn)) {
        this.selected = -1;
        this.render();
        return;
      }
    }
    this.commit({ ...draft, boxes: draft.boxes.map((box) => roundBox(box)) });
  }
}

function svgNode<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

export function isTyping(e: KeyboardEvent): boolean {
  const target = e.target as HTMLElement | null;
  if (!target) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}
