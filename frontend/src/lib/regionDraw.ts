/** A dragged rectangle on a scaled image, as a box in the image's own pixels. */
export interface PixelBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** The box between two points given in displayed pixels (either corner first), divided by the
 * display scale and clipped to the image; null when it is under `minSide` image pixels. */
export function dragToBox(
  start: { x: number; y: number }, end: { x: number; y: number }, scale: number, width: number, height: number,
  minSide = 4,
): PixelBox | null {
  const clip = (value: number, most: number) => Math.min(most, Math.max(0, value / scale));
  const box = {
    x1: Math.round(clip(Math.min(start.x, end.x), width)),
    y1: Math.round(clip(Math.min(start.y, end.y), height)),
    x2: Math.round(clip(Math.max(start.x, end.x), width)),
    y2: Math.round(clip(Math.max(start.y, end.y), height)),
  };
  return box.x2 - box.x1 >= minSide && box.y2 - box.y1 >= minSide ? box : null;
}
