/**
 * The polygon editor on the image stage (imageStage.ts: image, zoom, pan, undo). Clicks on
 * empty image place the points of a new shape; Enter or a click on its first point closes
 * it, Escape drops it. The selected instance shows its vertices: drag one to move it, click
 * on an edge to insert one there (and drag it on), Delete removes the selected vertex
 * (never below three). Dragging an instance's inside moves it whole. The box assist (B)
 * takes a dragged box and asks the server's GrabCut for the outline, which then edits like
 * any other. Instances with several rings (holes, parts) are shown, moved, relabelled and
 * deleted whole, their rings kept as they came.
 */
import { errorText, request } from "../lib/api";
import { type Point, boxFromCorners, clampPoint, hasArea, toDisplay } from "./geometry";
import { type ClassStyle, ImageStage, captionNodes, captionOf, svgNode } from "./imageStage";
import {
  type EditorPolygon,
  type PolygonLabels,
  canClose,
  closeShape,
  deleteVertex,
  edgeAt,
  insertVertex,
  isEditable,
  moveRings,
  moveVertex,
  polygonIndexAt,
  roundPoints,
  vertexAt,
  withPolygon,
  withRing,
  withoutPolygon,
} from "./polygon";

/** The box assist: the outline of the object in a box (image pixels), or a message why none came. */
export type BoxAssist = (box: { x1: number; y1: number; x2: number; y2: number }) => Promise<number[][] | string>;

/** The server's box assist (GrabCut) for the image `imageId()` names (null: none shown). */
export function serverBoxAssist(imageId: () => number | null): BoxAssist {
  return async (box) => {
    const id = imageId();
    if (id === null) return "no image is shown";
    try {
      const response = await request<{ points: number[][] }>("POST", `/api/images/${id}/segment-assist/`, { box });
      if (response.status === 200 && response.data) return response.data.points;
      return errorText(response.data) || `HTTP ${response.status}`;
    } catch {
      return "the server could not be reached";
    }
  };
}

/** A vertex drag or a move starts once the pointer has gone DRAG_START_PX from where it was
 * pressed (`pressed`, display pixels): a click that selects never nudges the shape. */
type Gesture =
  | { kind: "vertex"; index: number; vertex: number; origin: Point[]; inserted: boolean; pressed: Point | null }
  | { kind: "move"; index: number; start: Point; origin: Point[][]; pressed: Point | null }
  | { kind: "box"; start: Point; end: Point };

const VERTEX_RADIUS_PX = 8;
const EDGE_TOLERANCE_PX = 6;
const SAME_POINT_PX = 2;
const DRAG_START_PX = 3;

export class PolygonEditor extends ImageStage<PolygonLabels> {
  /** The shape being drawn, not yet an instance (and not in the history). */
  drawing: Point[] | null = null;
  selectedVertex = -1;
  assistMode = false;
  assistPending = false;
  private hover: Point | null = null;
  /** The box whose outline the server is computing. */
  private pendingBox: { x1: number; y1: number; x2: number; y2: number } | null = null;
  private gesture: Gesture | null = null;

  constructor(
    stage: HTMLElement,
    style: ClassStyle,
    onChange: () => void,
    private readonly assist: BoxAssist,
    private readonly notify: (message: string) => void,
  ) {
    super(stage, style, onChange, { polygons: [] });
  }

  load(image: HTMLImageElement, width: number, height: number, fullUrl: string, labels: PolygonLabels): void {
    this.drawing = null;
    this.assistMode = false;
    this.loadImage(image, width, height, fullUrl, labels);
  }

  select(index: number): void {
    this.selectedVertex = -1;
    super.select(index);
  }

  /** Enter: close the open shape. False when there is none (Enter then submits). */
  closeDrawing(): boolean {
    const points = this.drawing;
    if (!points) return false;
    const closed = closeShape(this.history.current, points, this.drawLabel);
    if (!closed) {
      this.notify("A shape needs at least three points around some area; keep clicking, or Esc to drop it.");
      return true;
    }
    this.drawing = null;
    this.selected = closed.polygons.length - 1;
    this.selectedVertex = -1;
    this.commit(closed);
    return true;
  }

  /** Escape: drop the open shape, else leave the box assist, else clear the selection. */
  escape(): void {
    if (this.drawing) {
      this.drawing = null;
      this.render();
      this.onChange();
    } else if (this.assistMode) {
      this.setAssistMode(false);
    } else {
      this.select(-1);
    }
  }

  setAssistMode(on: boolean): void {
    this.assistMode = on;
    if (on) this.drawing = null;
    this.overlay.classList.toggle("assist", on);
    this.render();
    this.onChange();
  }

  undo(): void {
    // While drawing, undo takes back the last point; the history holds only closed shapes.
    if (this.drawing) this.removeLastPoint();
    else super.undo();
  }

  setLabelOfSelected(label: number): boolean {
    const current = this.history.current;
    if (this.drawing || this.selected < 0 || this.selected >= current.polygons.length) return false;
    this.commit(withPolygon(current, this.selected, { label }));
    return true;
  }

  /** Delete/Backspace: the last point of the open shape, the selected vertex, or the selected instance. */
  deleteSelected(): boolean {
    if (this.drawing) return this.removeLastPoint();
    const current = this.history.current;
    const polygon = current.polygons[this.selected];
    if (!polygon) return false;
    if (this.selectedVertex >= 0 && isEditable(polygon)) {
      const ring = deleteVertex(polygon.rings[0], this.selectedVertex);
      if (!ring) {
        this.notify("A polygon keeps at least three vertices; to remove the shape, clear the vertex (Esc) and press Del.");
        return true;
      }
      this.selectedVertex = -1;
      this.commit(withRing(current, this.selected, ring));
      return true;
    }
    this.commit(withoutPolygon(current, this.selected));
    this.selected = -1;
    this.render();
    return true;
  }



  selectedLabel(): number | undefined {
    return this.labels.polygons[this.selected]?.label;
  }

  /** Put back unsubmitted work kept in the browser, if it has the shape of polygon labels. */
  restore(raw: unknown): boolean {
    const polygons = (raw as PolygonLabels | null)?.polygons;
    if (!Array.isArray(polygons) || !polygons.every((p) => Array.isArray(p?.rings) && typeof p.label === "number")) return false;
    this.commit({ polygons });
    return true;
  }

  private removeLastPoint(): boolean {
    if (!this.drawing) return false;
    this.drawing = this.drawing.length > 1 ? this.drawing.slice(0, -1) : null;
    this.render();
    this.onChange();
    return true;
  }

  protected shapesOf(labels: PolygonLabels): readonly EditorPolygon[] {
    return labels.polygons;
  }

  protected afterHistoryMove(): void {
    this.selectedVertex = -1;
    super.afterHistoryMove();
  }



  protected renderShapes(svg: SVGSVGElement): void {
    const polygons = this.labels.polygons;
    polygons.forEach((polygon, index) => {
      if (this.isVisible(polygon)) svg.append(this.polygonNode(polygon, index));
    });
    const selected = polygons[this.selected];
    if (selected && this.isVisible(selected) && isEditable(selected)) {
      selected.rings[0].forEach((point, vertex) => {
        const d = toDisplay(this.view, point);
        const node = svgNode("circle", { cx: d.x, cy: d.y, r: 5, class: `vertex${vertex === this.selectedVertex ? " active" : ""}` });
        node.setAttribute("data-vertex-index", String(vertex));
        svg.append(node);
      });
    }
    if (this.drawing) this.renderDrawing(svg, this.drawing);
    if (this.gesture?.kind === "box" || this.assistPending) this.renderAssistBox(svg);
  }

  private polygonNode(polygon: EditorPolygon, index: number): SVGGElement {
    const color = this.style.color(polygon.label);
    const classes = `polygon${index === this.selected ? " selected" : ""}${polygon.fromModel ? " model" : ""}`;
    const group = svgNode("g", { class: classes });
    group.setAttribute("data-polygon-index", String(index));
    group.setAttribute("data-label", String(polygon.label));
    const d = polygon.rings
      .map((ring) => ring.map((p, i) => {
        const q = toDisplay(this.view, p);
        return `${i === 0 ? "M" : "L"}${q.x.toFixed(2)} ${q.y.toFixed(2)}`;
      }).join(" ") + " Z")
      .join(" ");
    group.append(svgNode("path", { d, stroke: color, fill: color, "fill-rule": "evenodd", class: "polygon-shape" }));
    const all = polygon.rings.flat();
    const top = toDisplay(this.view, { x: Math.min(...all.map((p) => p.x)), y: Math.min(...all.map((p) => p.y)) });
    group.append(...captionNodes(top, captionOf(this.style, polygon.label, polygon.score), color));
    return group;
  }

  private renderDrawing(svg: SVGSVGElement, points: Point[]): void {
    const color = this.style.color(this.drawLabel);
    const shown = this.hover ? [...points, this.hover] : points;
    const line = shown.map((p) => {
      const q = toDisplay(this.view, p);
      return `${q.x.toFixed(2)},${q.y.toFixed(2)}`;
    }).join(" ");
    svg.append(svgNode("polyline", { points: line, stroke: color, class: "drawing" }));
    points.forEach((point, i) => {
      const d = toDisplay(this.view, point);
      const closable = i === 0 && canClose(points);
      svg.append(svgNode("circle", { cx: d.x, cy: d.y, r: closable ? 7 : 4, class: `vertex drawing-vertex${closable ? " first" : ""}` }));
    });
  }

  private renderAssistBox(svg: SVGSVGElement): void {
    const gesture = this.gesture;
    const box = gesture?.kind === "box" ? boxFromCorners(gesture.start, gesture.end, this.width, this.height) : this.pendingBox;
    if (!box) return;
    const a = toDisplay(this.view, { x: box.x1, y: box.y1 });
    const b = toDisplay(this.view, { x: box.x2, y: box.y2 });
    svg.append(svgNode("rect", {
      x: a.x, y: a.y, width: b.x - a.x, height: b.y - a.y, class: `assist-box${this.assistPending ? " pending" : ""}`,
    }));
  }

  protected cancelGesture(): void {
    this.gesture = null;
    this.hover = null;
    this.pendingBox = null;
    this.assistPending = false;
    this.overlay.classList.remove("assist");
  }

  protected gestureStart(e: PointerEvent, p: Point, at: Point): void {
    const inside = clampPoint(at, this.width, this.height);
    if (this.assistMode) {
      if (!this.assistPending) this.gesture = { kind: "box", start: inside, end: inside };
      return;
    }
    if (this.drawing) {
      const first = this.drawing[0];
      if (canClose(this.drawing) && vertexAt([first], this.view, p, VERTEX_RADIUS_PX) === 0) {
        this.closeDrawing();
        return;
      }
      // A double click places one point, not two on top of each other.
      if (vertexAt([this.drawing[this.drawing.length - 1]], this.view, p, SAME_POINT_PX) === 0) return;
      this.drawing = [...this.drawing, inside];
      this.render();
      return;
    }
    const labels = this.history.current;
    const selected = labels.polygons[this.selected];
    if (selected && this.isVisible(selected) && isEditable(selected)) {
      const ring = selected.rings[0];
      const vertex = vertexAt(ring, this.view, p, VERTEX_RADIUS_PX);
      if (vertex >= 0) {
        this.selectedVertex = vertex;
        this.gesture = { kind: "vertex", index: this.selected, vertex, origin: ring, inserted: false, pressed: p };
        this.render();
        this.onChange();
        return;
      }
      const edge = e.altKey ? null : edgeAt(ring, this.view, p, EDGE_TOLERANCE_PX);
      if (edge) {
        const grown = insertVertex(ring, edge.after, edge.point);
        this.selectedVertex = edge.after + 1;
        this.gesture = { kind: "vertex", index: this.selected, vertex: edge.after + 1, origin: grown, inserted: true, pressed: null };
        this.draft = withRing(labels, this.selected, grown);
        this.render();
        return;
      }
    }
    const hit = polygonIndexAt(labels.polygons, at, (i) => this.isVisible(labels.polygons[i]));
    if (hit >= 0) {
      this.select(hit);
      this.gesture = { kind: "move", index: hit, start: at, origin: labels.polygons[hit].rings, pressed: p };
      return;
    }
    this.select(-1);
    this.drawing = [inside];
    this.render();
    this.onChange();
  }

  protected gestureMove(p: Point, at: Point): void {
    const gesture = this.gesture;
    if (!gesture) {
      if (this.drawing) {
        this.hover = clampPoint(at, this.width, this.height);
        this.render();
      }
      return;
    }
    if (gesture.kind !== "box" && gesture.pressed) {
      if (Math.hypot(p.x - gesture.pressed.x, p.y - gesture.pressed.y) < DRAG_START_PX) return;
      gesture.pressed = null;
    }
    const current = this.history.current;
    if (gesture.kind === "box") {
      gesture.end = clampPoint(at, this.width, this.height);
    } else if (gesture.kind === "vertex") {
      this.draft = withRing(current, gesture.index, moveVertex(gesture.origin, gesture.vertex, at, this.width, this.height));
    } else {
      const rings = moveRings(gesture.origin, at.x - gesture.start.x, at.y - gesture.start.y, this.width, this.height);
      this.draft = withPolygon(current, gesture.index, { rings: rings.map((ring) => roundPoints(ring)) });
    }
    this.render();
  }

  protected gestureEnd(): void {
    const gesture = this.gesture;
    this.gesture = null;
    const draft = this.draft;
    this.draft = null;
    if (gesture?.kind === "box") {
      this.runAssist(boxFromCorners(gesture.start, gesture.end, this.width, this.height));
      return;
    }
    const unchanged =
      !gesture || !draft ||
      (!(gesture.kind === "vertex" && gesture.inserted) &&
        JSON.stringify(draft.polygons[gesture.index].rings) === JSON.stringify(this.history.current.polygons[gesture.index].rings));
    if (unchanged) {
      this.render();
      return;
    }
    this.commit(draft);
  }

  private runAssist(box: { x1: number; y1: number; x2: number; y2: number }): void {
    if (!hasArea(box)) {
      this.render();
      return;
    }
    this.assistPending = true;
    this.pendingBox = box;
    this.render();
    this.onChange();
    const image = this.image;
    const label = this.drawLabel;
    this.assist(box)
      .then((outline) => {
        if (this.image !== image) return; // a new image came while GrabCut ran
        if (typeof outline === "string") {
          this.notify(`Box assist: ${outline}`);
          return;
        }
        const ring = outline.map(([x, y]) => clampPoint({ x, y }, this.width, this.height));
        const closed = closeShape(this.history.current, ring, label);
        if (!closed) {
          this.notify("Box assist found no outline in that box; draw the polygon by hand.");
          return;
        }
        this.selected = closed.polygons.length - 1;
        this.selectedVertex = -1;
        this.commit(closed);
      })
      .finally(() => {
        if (this.image !== image) return;
        this.assistPending = false;
        this.pendingBox = null;
        this.setAssistMode(false);
      });
  }
}
