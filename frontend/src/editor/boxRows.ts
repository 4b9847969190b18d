/** The editor sidebar's shape list: one row per box or polygon (its class, and the model's
 * score while the shape is still the model's), click to select, × to delete; the annotate
 * page and a lead's image editor share it. */
import { el } from "../lib/api";
import type { BoxEditor } from "./boxEditor";
import type { PolygonEditor } from "./polygonEditor";

type ClassOf = (label: number) => { name: string; color: string } | undefined;

interface Shape {
  label: number;
  score: number | null;
  fromModel: boolean;
}

export function renderBoxRows(host: HTMLElement, editor: BoxEditor, classOf: ClassOf): void {
  renderShapeRows(host, editor, editor.labels.boxes, classOf, "No boxes. Drag on the image to draw one.");
}

export function renderPolygonRows(host: HTMLElement, editor: PolygonEditor, classOf: ClassOf): void {
  renderShapeRows(host, editor, editor.labels.polygons, classOf,
    "No shapes. Click on the image to place points, Enter to close; B: draw a box and get its outline.");
}

function renderShapeRows(
  host: HTMLElement, editor: BoxEditor | PolygonEditor, shapes: readonly Shape[], classOf: ClassOf, emptyText: string,
): void {
  host.replaceChildren(...shapes.map((shape, index) => {
    const c = classOf(shape.label);
    const row = el(
      "li",
      { class: `box-row${index === editor.selected ? " active" : ""}${shape.fromModel && !editor.showModel ? " hidden-box" : ""}` },
      el("span", { class: "swatch", style: `background:${c?.color ?? "#888"}` }),
      el("span", { class: "class-name" }, c?.name ?? `class ${shape.label}`),
      el("span", { class: "prob" }, shape.score === null ? "edited" : shape.score.toFixed(2)),
    );
    const remove = el("button", { type: "button", class: "icon", title: "Delete (Del)" }, "×");
    remove.addEventListener("click", (e) => {
      e.stopPropagation();
      editor.select(index);
      editor.deleteSelected();
    });
    row.append(remove);
    row.addEventListener("click", () => editor.select(index));
    return row;
  }));
  if (shapes.length === 0) host.replaceChildren(el("li", { class: "muted" }, emptyText));
}
