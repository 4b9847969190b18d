/** Static box drawings in image coordinates (viewBox = image size), for thumbnails. */
const SVG_NS = "http://www.w3.org/2000/svg";

export interface PlainBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  label: number;
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

export function boxesSvg(width: number, height: number, layers: Array<{ boxes: PlainBox[]; dashed: boolean }>,
  color: (label: number) => string): SVGSVGElement {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  for (const layer of layers) {
    for (const box of layer.boxes) {
      const rect = svgRect(box);
      rect.setAttribute("fill", "none");
      rect.setAttribute("stroke", color(box.label));
      rect.setAttribute("stroke-width", layer.dashed ? "1.5" : "2.5");
      if (layer.dashed) rect.setAttribute("stroke-dasharray", "5 4");
      svg.append(rect);
    }
  }
  return svg;
}
