/**
 * What every shape editor shares: the image on the stage with an SVG overlay, the view
 * (wheel zoom at the cursor, Space+drag or middle/right drag pans, fit), the switch to the
 * full-resolution original once the view magnifies the display copy, and undo/redo over
 * snapshots of the labels. Subclasses draw their shapes and turn left-button gestures into
 * edits; labels always stay in original-image pixels, only rendering uses the view.
 */
import { type Point, fitView, needsFullResolution, panBy, toImage, type View, zoomAt } from "./geometry";
import { History } from "./history";

export interface ClassStyle {
  name(label: number): string;
  color(label: number): string;
}

export const SVG_NS = "http://www.w3.org/2000/svg";

export abstract class ImageStage<T> {
  readonly history: History<T>;
  view: View = { scale: 1, tx: 0, ty: 0 };
  selected = -1;
  drawLabel = 0;
  showModel = true;

  protected image: HTMLImageElement | null = null;
  protected width = 1;
  protected height = 1;
  /** A gesture's live state, shown but not yet in the history. */
  protected draft: T | null = null;
  protected readonly overlay: SVGSVGElement;
  private displayWidth = 1;
  private fullUrl = "";
  private fullRequested = false;
  private panLast: Point | null = null;
  private spaceHeld = false;

  constructor(
    protected readonly stage: HTMLElement,
    protected readonly style: ClassStyle,
    protected readonly onChange: () => void,
    empty: T,
  ) {
    this.history = new History<T>(empty);
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

  get labels(): T {
    return this.draft ?? this.history.current;
  }

  /** Show a new image (already decoded) with its starting labels; resets history and view. */
  protected loadImage(image: HTMLImageElement, width: number, height: number, fullUrl: string, labels: T): void {
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
    this.history.reset(labels);
    this.draft = null;
    this.panLast = null;
    this.selected = -1;
    this.cancelGesture();
    this.fit();
  }

  fit(): void {
    const rect = this.stage.getBoundingClientRect();
    this.view = fitView(this.width, this.height, rect.width, rect.height);
    this.render();
  }

  commit(next: T): void {
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

  select(index: number): void {
    this.selected = index;
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
    this.overlay.replaceChildren();
    this.renderShapes(this.overlay);
  }

  /** Tab through the visible shapes. */
  selectNext(step: number): void {
    const visible = this.visibleIndexes();
    if (visible.length === 0) return;
    const at = visible.indexOf(this.selected);
    const next = at < 0 ? (step > 0 ? 0 : visible.length - 1) : (at + step + visible.length) % visible.length;
    this.select(visible[next]);
  }

  toggleModelBoxes(): void {
    this.showModel = !this.showModel;
    if (!this.showModel && this.shapesOf(this.labels)[this.selected]?.fromModel) this.selected = -1;
    this.render();
    this.onChange();
  }

  /** The labels' shapes (boxes, polygons), in selection order. */
  protected abstract shapesOf(labels: T): readonly { fromModel: boolean }[];

  protected isVisible(shape: { fromModel: boolean }): boolean {
    return this.showModel || !shape.fromModel;
  }

  protected visibleIndexes(): number[] {
    return this.shapesOf(this.labels).flatMap((shape, i) => (this.isVisible(shape) ? [i] : []));
  }
  protected abstract renderShapes(svg: SVGSVGElement): void;
  /** A left-button press at `p` (display pixels, also given in image pixels). */
  protected abstract gestureStart(e: PointerEvent, p: Point, at: Point): void;
  protected abstract gestureMove(p: Point, at: Point): void;
  protected abstract gestureEnd(): void;
  /** Drop any gesture in progress (a new image was loaded). */
  protected abstract cancelGesture(): void;

  protected afterHistoryMove(): void {
    if (this.selected >= this.shapesOf(this.history.current).length) this.selected = -1;
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

  /** Swap in the original once the view magnifies the display version; labels are unaffected. */
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

  protected localPoint(e: PointerEvent | WheelEvent | MouseEvent): Point {
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
      this.panLast = p;
      return;
    }
    if (e.button !== 0) return;
    this.gestureStart(e, p, toImage(this.view, p));
  }

  private pointerMove(e: PointerEvent): void {
    const p = this.localPoint(e);
    if (this.panLast) {
      this.setView(panBy(this.view, p.x - this.panLast.x, p.y - this.panLast.y));
      this.panLast = p;
      return;
    }
    this.gestureMove(p, toImage(this.view, p));
  }

  private pointerUp(e: PointerEvent): void {
    if (this.overlay.hasPointerCapture(e.pointerId)) this.overlay.releasePointerCapture(e.pointerId);
    if (this.panLast) {
      this.panLast = null;
      this.render();
      return;
    }
    this.gestureEnd();
  }
}

export function svgNode<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

export function isTyping(e: KeyboardEvent): boolean {
  const target = e.target as HTMLElement | null;
  if (!target) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

/** A shape's caption (class name, and the model's score while the shape is still the
 * model's) just above `anchor`, or just below it at the top edge of the stage. */
export function captionNodes(anchor: Point, caption: string, color: string): SVGElement[] {
  const textY = anchor.y > 16 ? anchor.y - 4 : anchor.y + 13;
  const background = svgNode("rect", {
    x: anchor.x, y: textY - 12, width: caption.length * 6.6 + 8, height: 15, fill: color, class: "box-caption-bg",
  });
  const text = svgNode("text", { x: anchor.x + 4, y: textY, class: "box-caption" });
  text.textContent = caption;
  return [background, text];
}

export function captionOf(style: ClassStyle, label: number, score: number | null): string {
  return score === null ? style.name(label) : `${style.name(label)} ${score.toFixed(2)}`;
}
