/** The editor sidebar's box list: one row per box (its class, and the model's score while
 * the box is still the model's), click to select, × to delete; the annotate page and a
 * lead's image editor share it. */
import { el } from "../lib/api";
import type { BoxEditor } from "./boxEditor";

export function renderBoxRows(
  host: HTMLElement, editor: BoxEditor, classOf: (label: number) => { name: string; color: string } | undefined,
): void {
  const boxes = editor.labels.boxes;
  host.replaceChildren(...boxes.map((box, index) => {
    const c = classOf(box.label);
    const row = el(
      "li",
      { class: `box-row${index === editor.selected ? " active" : ""}${box.fromModel && !editor.showModel ? " hidden-box" : ""}` },
      el("span", { class: "swatch", style: `background:${c?.color ?? "#888"}` }),
      el("span", { class: "class-name" }, c?.name ?? `class ${box.label}`),
      el("span", { class: "prob" }, box.score === null ? "edited" : box.score.toFixed(2)),
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
  if (boxes.length === 0) host.replaceChildren(el("li", { class: "muted" }, "No boxes. Drag on the image to draw one."));
}
