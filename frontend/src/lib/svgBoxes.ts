/** Static box and polygon drawings in image coordinates (viewBox = image size), for thumbnails. */
const SVG_NS = "http://www.w3.org/2000/svg";

export interface PlainBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  label: number;
}

/** A segmentation instance as payloads carry it: one ring, or several (holes, parts). */
export interface PlainPolygon {
  label: number;
  points?: number[][];
  rings?: number[][][];
}

/** One box as an SVG rect in image coordinates, its stroke width unscaled. */
export function svgRect(box: { x1: number; y1: number; x2: number; y2: number }): SVGRectElement {
  const rect = document.createElementNS(SVG_NS, "rect");
  rect.setAttribute("x", String(box.x1));
  rect.setAttribute("y", String(box.y1));
  rect.setAttribute("width", String(box.x2 - box.x1));
  rect.setAttribute("height", String(box.y2 - box.y1));
  rect.setAttribute("vector-effect", "non-scaling-stroke");
  return rect;
}

export function boxesSvg(width: number, height: number,
  layers: Array<{ boxes: PlainBox[]; polygons?: PlainPolygon[]; dashed: boolean }>,
  color: (label: number) => string): SVGSVGElement {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const outline = (shape: SVGElement, label: number, dashed: boolean) => {
    shape.setAttribute("fill", "none");
    shape.setAttribute("stroke", color(label));
    shape.setAttribute("stroke-width", dashed ? "1.5" : "2.5");
    shape.setAttribute("vector-effect", "non-scaling-stroke");
    if (dashed) shape.setAttribute("stroke-dasharray", "5 4");
    svg.append(shape);
  };
  for (const layer of layers) {
    for (const box of layer.boxes) {
      const rect = svgRect(box);
      outline(rect, box.label, layer.dashed);
    }
    for (const polygon of layer.polygons ?? []) {
      const rings = polygon.rings ?? (polygon.points ? [polygon.points] : []);
      const path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", rings.map((ring) => `M${ring.map(([x, y]) => `${x} ${y}`).join(" L")} Z`).join(" "));
      outline(path, polygon.label, layer.dashed);
    }
  }
  return svg;
}
