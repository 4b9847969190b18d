/**
 * The box editor on the image stage (imageStage.ts: image, zoom, pan, undo): shows the
 * boxes and turns pointer gestures into edits — drag on empty image draws, drag a box
 * moves it, drag a handle of the selected box resizes it. Labels are kept in
 * original-image pixels; only rendering uses the view.
 */
import {
  type Box,
  type Handle,
  HANDLES,
  type Point,
  boxFromCorners,
  boxIndexAt,
  handleAt,
  handlePoint,
  hasArea,
  moveBox,
  resizeBox,
  roundBox,
  toDisplay,
} from "./geometry";
import { type ClassStyle, ImageStage, captionNodes, captionOf, svgNode } from "./imageStage";

export { type ClassStyle, isTyping } from "./imageStage";

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

type Gesture =
  | { kind: "draw"; start: Point; label: number }
  | { kind: "move"; index: number; start: Point; origin: EditorBox }
  | { kind: "resize"; index: number; handle: Handle; origin: EditorBox };

const HANDLE_RADIUS_PX = 8;

export class BoxEditor extends ImageStage<Labels> {
  detection = true;
  private gesture: Gesture | null = null;

  constructor(stage: HTMLElement, style: ClassStyle, onChange: () => void) {
    super(stage, style, onChange, { boxes: [], tags: [] });
  }

  /** Show a new image (already decoded) with its starting labels; resets history and view. */
  load(image: HTMLImageElement, width: number, height: number, fullUrl: string, labels: Labels, detection = true): void {
    this.detection = detection;
    this.loadImage(image, width, height, fullUrl, labels);
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



  selectedLabel(): number | undefined {
    return this.labels.boxes[this.selected]?.label;
  }

  protected shapesOf(labels: Labels): readonly EditorBox[] {
    return labels.boxes;
  }

  protected renderShapes(svg: SVGSVGElement): void {
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
      ...captionNodes(a, box.ignore ? `${this.style.name(box.label)} (ignored)` : captionOf(this.style, box.label, box.score),
        color),
    );
    return group;
  }



  protected cancelGesture(): void {
    this.gesture = null;
  }

  protected gestureStart(_e: PointerEvent, p: Point, at: Point): void {
    if (!this.detection) return;
    const labels = this.history.current;
    const selected = labels.boxes[this.selected];
    if (selected && this.isVisible(selected)) {
      const handle = handleAt(selected, this.view, p, HANDLE_RADIUS_PX);
      if (handle) {
        this.gesture = { kind: "resize", index: this.selected, handle, origin: selected };
        return;
      }
    }
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

  protected gestureMove(_p: Point, at: Point): void {
    const gesture = this.gesture;
    if (!gesture) return;
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

  protected gestureEnd(): void {
    const gesture = this.gesture;
    this.gesture = null;
    const draft = this.draft;
    this.draft = null;
    if (!gesture || !draft) {
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
